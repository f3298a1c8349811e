import CLibUV

/// A `uv_poll_t` on a descriptor libuv does not read itself (a resolver library's socket, or a listening socket
/// the `Listener` accepts from): the action runs on the loop's thread when the descriptor is readable or writable. Closed with `close()`, which
/// must come before the descriptor itself is closed (libuv must stop polling it first); memory goes in the close
/// callback.
public final class LoopPoll {
    public struct Readiness: Equatable, Sendable {
        public var readable: Bool
        public var writable: Bool
        /// An error on the descriptor (libuv's status); the owner should treat it as readable and writable, so
        /// the library that owns the socket sees the error itself.
        public var error: UVError?
    }

    public let handle: UnsafeMutablePointer<uv_poll_t>
    public let descriptor: Int32
    private var action: (Readiness) -> Void
    private var isClosing = false

    /// Fails with the libuv error when the descriptor cannot be polled (not a socket, closed).
    public init(loop: EventLoop, socket: Int32, action: @escaping (Readiness) -> Void) throws(UVError) {
        self.action = action
        descriptor = socket
        handle = .allocate(capacity: 1)
        let status = uv_poll_init_socket(loop.raw, handle, socket)
        guard status == 0 else {
            handle.deallocate()
            throw UVError(status)
        }
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Polls for what is asked; neither stops polling (the handle stays open).
    public func watch(readable: Bool, writable: Bool) {
        guard !isClosing else { return }
        var events: Int32 = 0
        if readable { events |= Int32(UV_READABLE.rawValue) }
        if writable { events |= Int32(UV_WRITABLE.rawValue) }
        if events == 0 {
            uv_poll_stop(handle)
        } else {
            uv_poll_start(handle, events, Callbacks.poll)
        }
    }

    func fire(status: Int32, events: Int32) {
        action(
            Readiness(
                readable: events & Int32(UV_READABLE.rawValue) != 0,
                writable: events & Int32(UV_WRITABLE.rawValue) != 0,
                error: status < 0 ? UVError(status) : nil))
    }

    /// Stops polling at once and closes the handle. Idempotent.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        action = { _ in }
        uv_poll_stop(handle)
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closePoll)
    }
}

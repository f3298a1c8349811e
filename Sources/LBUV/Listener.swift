import CLibUV

/// A listening TCP socket on one loop. Accepted sockets are handed to `onAccept`, which must create a
/// `TCPConnection` and call `accept(into:)`. Same ownership rule as connections: the handle holds one retain
/// until its close callback.
public final class Listener {
    public unowned(unsafe) let loop: EventLoop
    public let handle: UnsafeMutablePointer<uv_tcp_t>
    private var isClosing = false
    /// Called for each pending connection; it must accept it (or close what it created).
    public var onAccept: (Listener) -> Void = { _ in }
    /// Called when accepting failed (e.g. EMFILE): counted and logged by the owner.
    public var onError: (UVError) -> Void = { _ in }

    /// Binds and listens. `reusePort` lets several workers' loops share one address (SO_REUSEPORT).
    public init(loop: EventLoop, address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = false) throws(SetupError) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        uv_tcp_init_ex(loop.raw, handle, UInt32(address.storage.ss_family))
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        do {
            if reusePort {
                var fd: uv_os_fd_t = -1
                uv_fileno(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), &fd)
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            try UVError.check(address.withSockaddr { uv_tcp_bind(handle, $0, 0) }, "cannot bind \(address)")
            let stream = UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
            try UVError.check(uv_listen(stream, backlog, Callbacks.connection), "cannot listen on \(address)")
        } catch {
            close()
            throw error
        }
    }

    /// The bound address (the real port when bound to port 0).
    public var boundAddress: SocketAddress {
        var storage = sockaddr_storage()
        var len = Int32(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getsockname(handle, $0, &len) }
        }
        return SocketAddress(storage: storage)
    }

    final func didAccept(status: Int32) {
        if status < 0 {
            onError(UVError(status))
            return
        }
        onAccept(self)
    }

    /// Accepts the pending connection into `conn`. Returns false (and closes `conn`) on failure.
    public func accept(into conn: TCPConnection) -> Bool {
        let server = UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
        if uv_accept(server, conn.stream) < 0 {
            conn.close()
            return false
        }
        return true
    }

    public func close() {
        guard !isClosing else { return }
        isClosing = true
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeListener)
    }
}

import CLibUV

/// A repeating or one-shot `uv_timer_t`. Closed with `close()`; memory goes in the close callback.
public final class LoopTimer {
    public let handle: UnsafeMutablePointer<uv_timer_t>
    private var action: () -> Void
    private var isClosing = false

    public init(loop: EventLoop, action: @escaping () -> Void) {
        self.action = action
        handle = .allocate(capacity: 1)
        uv_timer_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Starts (or restarts) the timer: first after `timeout` ms, then every `repeat` ms (0 = once).
    public func start(timeout: UInt64, repeat: UInt64 = 0) {
        guard !isClosing else { return }
        uv_timer_start(handle, Callbacks.timer, timeout, `repeat`)
    }

    /// Stops the timer; `start` arms it again.
    public func stop() {
        guard !isClosing else { return }
        uv_timer_stop(handle)
    }

    /// Does not keep the loop alive on its own (housekeeping timers).
    public func unref() { uv_unref(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) }

    func fire() { action() }

    public func close() {
        guard !isClosing else { return }
        isClosing = true
        action = {}
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeTimer)
    }
}

/// A `uv_check_t`: runs its action once per loop turn, after the turn's I/O callbacks, while started. Work that
/// many callbacks of one turn ask for (a connection's writes, say) is done there once. Closed with `close()`;
/// memory goes in the close callback.
///
/// While started it also keeps an idle handle active, which makes the turn's poll for I/O non-blocking: work
/// asked for outside the poll phase (from a write callback libuv deferred to the next turn's pending phase, or
/// a timer) would otherwise wait in a blocking poll until some unrelated event or timer woke the loop.
public final class LoopCheck {
    public let handle: UnsafeMutablePointer<uv_check_t>
    private let wake: UnsafeMutablePointer<uv_idle_t>
    private var action: () -> Void
    private var isClosing = false
    public private(set) var isActive = false

    public init(loop: EventLoop, action: @escaping () -> Void) {
        self.action = action
        handle = .allocate(capacity: 1)
        uv_check_init(loop.raw, handle)
        wake = .allocate(capacity: 1)
        uv_idle_init(loop.raw, wake)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    public func start() {
        guard !isActive, !isClosing else { return }
        isActive = true
        uv_check_start(handle, Callbacks.check)
        uv_idle_start(wake, Callbacks.idleNothing)
    }

    public func stop() {
        guard isActive else { return }
        isActive = false
        uv_check_stop(handle)
        uv_idle_stop(wake)
    }

    func fire() { action() }

    public func close() {
        guard !isClosing else { return }
        isClosing = true
        isActive = false
        action = {}
        uv_close(UnsafeMutableRawPointer(wake).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeIdle)
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeCheck)
    }
}

/// A `uv_signal_t`: the signal is delivered on the loop's thread, never in a signal handler.
public final class SignalWatcher {
    public let handle: UnsafeMutablePointer<uv_signal_t>
    private var action: (Int32) -> Void
    private var isClosing = false

    public init(loop: EventLoop, signal: Int32, action: @escaping (Int32) -> Void) {
        self.action = action
        handle = .allocate(capacity: 1)
        uv_signal_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        uv_signal_start(handle, Callbacks.signal, signal)
        // A signal watcher alone must not keep the loop running after shutdown.
        uv_unref(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self))
    }

    func fire(_ signum: Int32) { action(signum) }

    public func close() {
        guard !isClosing else { return }
        isClosing = true
        action = { _ in }
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeSignal)
    }
}

/// A `uv_async_t`: the one way another thread asks this loop to do something.
/// `wake()` may be called from any thread; `action` runs on the loop's thread.
public final class AsyncWakeup: @unchecked Sendable {
    public let handle: UnsafeMutablePointer<uv_async_t>
    private var action: () -> Void
    private var isClosing = false

    public init(loop: EventLoop, action: @escaping () -> Void) {
        self.action = action
        handle = .allocate(capacity: 1)
        uv_async_init(loop.raw, handle, Callbacks.async)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        uv_unref(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self))
    }

    /// Thread-safe.
    public func wake() { uv_async_send(handle) }

    /// Whether this handle alone keeps the loop running (off by default). Loop thread only.
    public func keepsLoopAlive(_ on: Bool) {
        guard !isClosing else { return }
        let h = UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)
        if on { uv_ref(h) } else { uv_unref(h) }
    }

    func fire() { action() }

    /// Loop thread only.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        action = {}
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeAsync)
    }
}

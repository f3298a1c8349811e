import CLibUV
import Glibc

/// A listening TCP socket on one loop. Accepted sockets are handed to `onAccept`, which must create a
/// `TCPConnection` and call `accept(into:)`. Same ownership rule as connections: the handle holds one retain
/// until its close callback.
public final class Listener {
    public unowned(unsafe) let loop: EventLoop
    public let handle: UnsafeMutablePointer<uv_tcp_t>
    private var isClosing = false
    private var isAccepting = false
    private let backlog: Int32
    /// Called for each pending connection; it must accept it (or close what it created).
    public var onAccept: (Listener) -> Void = { _ in }
    /// Called when accepting failed (e.g. EMFILE): counted and logged by the owner.
    public var onError: (UVError) -> Void = { _ in }

    /// Binds and listens. `reusePort` lets several workers' loops share one address (SO_REUSEPORT).
    /// With `accepting: false` the socket is bound but not listening yet: `startAccepting()` does that later.
    public init(
        loop: EventLoop, address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = false, accepting: Bool = true
    ) throws(SetupError) {
        self.loop = loop
        self.backlog = backlog
        handle = .allocate(capacity: 1)
        uv_tcp_init_ex(loop.raw, handle, UInt32(address.storage.ss_family))
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        do {
            if reusePort {
                var one: Int32 = 1
                setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            try UVError.check(address.withSockaddr { uv_tcp_bind(handle, $0, 0) }, "cannot bind \(address)")
            if accepting { try startAccepting() }
        } catch {
            close()
            throw error
        }
    }

    /// Takes over `fd`, a TCP socket that is already bound and listening (passed by the process this one
    /// replaces), without accepting on it until `startAccepting()`. Connections that arrive meanwhile wait in
    /// the socket's accept queue. The listener owns `fd` from here on, also when this throws (it is closed).
    public init(loop: EventLoop, adopting fd: Int32, backlog: Int32 = 1024) throws(SetupError) {
        self.loop = loop
        self.backlog = backlog
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        let status = uv_tcp_open(handle, uv_os_sock_t(fd))
        if status < 0 {
            Glibc.close(fd)
            close()
            throw SetupError("cannot adopt inherited socket \(fd): \(UVError(status))")
        }
    }

    /// Starts accepting (`listen`, then polling). Idempotent. Throws when the kernel refuses `listen`.
    public func startAccepting() throws(SetupError) {
        guard !isAccepting, !isClosing else { return }
        let stream = UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
        try UVError.check(uv_listen(stream, backlog, Callbacks.connection), "cannot listen on \(boundAddress)")
        isAccepting = true
    }

    /// The socket's descriptor (-1 once closed): what a hot upgrade passes to the next process.
    public var descriptor: Int32 {
        var fd: uv_os_fd_t = -1
        uv_fileno(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), &fd)
        return fd
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

    /// Accepts the pending connection into `conn`. Returns false (and closes `conn`) on failure, and once this
    /// listener is closing: its handle may already be freed (an accept deferred to a later loop turn).
    public func accept(into conn: TCPConnection) -> Bool {
        guard !isClosing else {
            conn.close()
            return false
        }
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

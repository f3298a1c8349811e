import CLibUV
import Glibc

/// A listening TCP socket on one loop. Each pending connection is offered to `onAccept`, which must create a
/// `TCPConnection` and call `accept(into:)`, or leave it queued in the kernel for later (a cap on accepts per
/// turn): the listener then stops polling until `accept(into:)` is called again. Same ownership rule as
/// connections: the handle holds one retain until its close callback.
///
/// The listener accepts through its own poll rather than libuv's `uv_listen`, for three costs per connection
/// that libuv's accept loop cannot avoid. It asks the kernel how many connections wait (`TCP_INFO` on a listening
/// socket reports its accept queue) and accepts that many, where libuv accepts until `EAGAIN`: with one client
/// connecting at a time every accept was followed by a failing one, and a failing `accept4` allocates and frees a
/// socket and a file (4.6 µs measured here, against 0.6 µs for the query). `accept4` hands over the peer's address
/// (`acceptedPeer`), which spares a `getpeername`. And `TCP_NODELAY` is set once on the listening socket, which
/// Linux copies to every socket it accepts, instead of once per connection.
public final class Listener {
    public unowned(unsafe) let loop: EventLoop
    public let handle: UnsafeMutablePointer<uv_tcp_t>
    private var isClosing = false
    /// Readiness of the listening socket; nil until `startAccepting()`.
    private var poll: LoopPoll?
    /// Polling stopped: an offer was left queued by `onAccept`, or accepting failed with the connection left
    /// queued (or the socket reported an error) and resumes after `errorPauseMs`.
    private var pausedForOwner = false
    private var pausedForError: LoopTimer?
    /// Set by `accept(into:)` while an offer is made: whether it was taken, and whether this round of offers
    /// ends (the queue was found empty, or accepting failed).
    private var offerTaken = false
    private var stopOffering = false
    private let backlog: Int32
    /// Called for each pending connection; it must accept it, close what it created, or leave it queued.
    public var onAccept: (Listener) -> Void = { _ in }
    /// Called when accepting failed (e.g. EMFILE): counted and logged by the owner.
    public var onError: (UVError) -> Void = { _ in }
    /// The peer address of the connection `accept(into:)` took last (valid right after it returns true).
    public private(set) var acceptedPeer = sockaddr_storage()

    /// Most connections offered in one readiness callback; the rest wait for the next turn's.
    static let maxOffersPerWake = 1024
    /// How long accepting pauses after a failure that leaves the connection queued (descriptors or memory ran
    /// out, a filter refused): the connections stay queued in the kernel and are served once the cause is gone,
    /// instead of the listener spinning on the error.
    static let errorPauseMs: UInt64 = 100
    /// Failed connections skipped in one `accept(into:)` before it gives up for this offer.
    static let maxAcceptRetries = 16

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
        // A predecessor that set it per connection left it off the socket; connections already queued lack it.
        setNoDelay(fd)
    }

    /// Starts accepting (`listen`, then polling). Idempotent. Throws when the kernel refuses `listen`.
    public func startAccepting() throws(SetupError) {
        guard poll == nil, !isClosing else { return }
        // libuv keeps a bind error (address in use) for `uv_listen` to report; a bare `listen` on the unbound
        // socket would instead bind it to a random port.
        try UVError.check(handle.pointee.delayed_error, "cannot listen on \(boundAddress)")
        let fd = descriptor
        // Before `listen`: a connection completed before the option is set would be copied without it.
        setNoDelay(fd)
        try UVError.check(Glibc.listen(fd, backlog) == 0 ? 0 : -errno, "cannot listen on \(boundAddress)")
        do {
            poll = try LoopPoll(loop: loop, socket: fd) { [unowned self] readiness in self.offerPending(readiness) }
        } catch {
            throw SetupError("cannot poll the listening socket of \(boundAddress): \(error)")
        }
        poll?.watch(readable: true, writable: false)
    }

    /// `TCP_NODELAY` on the listening socket, which Linux copies to every socket accepted from it.
    private func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
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

    /// Connections wait in the accept queue: offers each to `onAccept`, as many as the kernel reports queued
    /// (`queuedConnections`), until one is left queued or the queue is found empty.
    private func offerPending(_ readiness: LoopPoll.Readiness) {
        if let error = readiness.error {
            // libuv stops polling a descriptor that reported an error; polling starts again after the pause.
            onError(error)
            pauseAfterError()
            return
        }
        // At least one: the socket is readable, so a connection is queued whatever the count said.
        var offers = min(max(1, queuedConnections() ?? Listener.maxOffersPerWake), Listener.maxOffersPerWake)
        while offers > 0 && !isClosing && !pausedForOwner && pausedForError == nil {
            offerTaken = false
            stopOffering = false
            onAccept(self)
            if !offerTaken && !isClosing {
                // Left queued by the owner: no more readiness callbacks until it takes that one.
                pausedForOwner = true
                poll?.watch(readable: false, writable: false)
            }
            if stopOffering { return }
            offers -= 1
        }
    }

    /// Connections in the accept queue, from `TCP_INFO` (a listening socket reports its queue length there); nil
    /// when the kernel does not say.
    private func queuedConnections() -> Int? {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(descriptor, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0,
            length >= socklen_t(MemoryLayout.offset(of: \tcp_info.tcpi_unacked)! + 4)
        else { return nil }
        return Int(info.tcpi_unacked)
    }

    /// Accepts the next queued connection into `conn`, and records its peer in `acceptedPeer`. Returns false (and
    /// closes `conn`) when none is queued or accepting failed, and once this listener is closing: its handle may
    /// already be freed (an accept deferred to a later loop turn).
    public func accept(into conn: TCPConnection) -> Bool {
        guard !isClosing else {
            conn.close()
            return false
        }
        offerTaken = true
        if pausedForOwner {
            pausedForOwner = false
            if pausedForError == nil { poll?.watch(readable: true, writable: false) }
        }
        let fd = descriptor
        var retries = 0
        while true {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let accepted = withUnsafeMutablePointer(to: &acceptedPeer) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    lb_accept(fd, $0, &length)
                }
            }
            if accepted >= 0 {
                let status = uv_tcp_open(conn.handle, uv_os_sock_t(accepted))
                if status == 0 { return true }
                Glibc.close(accepted)
                onError(UVError(status))
                break
            }
            let error = errno
            switch error {
            case EINTR, ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP,
                ENETUNREACH:
                // Interrupted, or this connection failed while queued (Linux reports its pending error here and
                // drops it from the queue): the next may be fine. Bounded, in case one of these repeats.
                retries += 1
                if retries < Listener.maxAcceptRetries { continue }
            case EAGAIN, EWOULDBLOCK:
                break
            default:
                // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), or refused (EPERM from a
                // syscall filter): the connection stays queued, so trying again at once would spin.
                onError(UVError(-error))
                pauseAfterError()
            }
            stopOffering = true
            break
        }
        conn.close()
        return false
    }

    /// Accepting failed in a way that leaves the connection queued (out of descriptors or memory, refused), or
    /// the socket reported an error: stops polling for `errorPauseMs`, leaving the queue to the kernel.
    private func pauseAfterError() {
        guard pausedForError == nil, !isClosing else { return }
        poll?.watch(readable: false, writable: false)
        let timer = LoopTimer(loop: loop) { [unowned self] in
            self.pausedForError?.close()
            self.pausedForError = nil
            if !self.isClosing && !self.pausedForOwner { self.poll?.watch(readable: true, writable: false) }
        }
        pausedForError = timer
        timer.start(timeout: Listener.errorPauseMs)
    }

    public func close() {
        guard !isClosing else { return }
        isClosing = true
        // libuv must stop polling the descriptor before the TCP handle's close closes it.
        poll?.close()
        poll = nil
        pausedForError?.close()
        pausedForError = nil
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeListener)
    }
}

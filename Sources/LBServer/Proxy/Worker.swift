import CLibUV
import LBCore
import LBTLS
import LBUV

/// One loop's proxy: its listener, its client connections and its share of every backend's pool.
/// Everything here runs on the loop's thread; the routing state is read lock-free from the shared publisher.
final class Worker {
    let id: Int
    let loop: EventLoop
    let settings: ProxySettings
    var timerLimits: ConnectionTimer.Limits { settings.timeouts }
    let routing: SnapshotPublisher<RoutingState>
    private(set) var listeners: [Listener] = []
    /// Every open client connection (intrusive list: O(1) add/remove, no allocation), for timeouts and shutdown.
    private(set) var clients = ConnectionList<ClientConnection>()
    /// Upstream connections being connected, active or idle in a pool, for timeouts and shutdown.
    private(set) var upstreams = ConnectionList<UpstreamConnection>()
    private var sweepTimer: LoopTimer?
    /// Loop time of the next purge of the idle pools.
    private var nextPoolPurge: UInt64 = 0
    private var requestIDBase: UInt64
    private var requestCounter: UInt64 = 0
    /// Set by graceful shutdown: responses carry `Connection: close`, idle keep-alive clients are closed.
    private(set) var isDraining = false
    var counters = WorkerCounters()
    /// Where an accepted connection's peer address is formatted before the connection keeps it (no allocation
    /// per accept once it has grown).
    var addressScratch: [UInt8] = []
    /// Requests currently assigned to an upstream, over every backend (the bounded-load average's numerator).
    var upstreamInFlight = 0
    /// Nil when `access_log.format` is off.
    var accessLog: AccessLog?
    /// The TLS handshake caps (`limits.tls_handshakes_per_turn` / `_per_second`).
    private var tlsAdmission: AcceptAdmission
    /// The plain accept cap (`limits.accepts_per_turn`).
    private var plainAdmission: AcceptAdmission
    /// Fires in the next loop turn (timeout 0) to start a new turn's share, or when the rate allows the next
    /// handshake; armed only while capped accepts happen or wait.
    private var admissionTimer: LoopTimer?
    private var admissionTimerArmed = false
    private var admissionTimerDue: UInt64 = 0
    /// Listeners whose next connection a cap left in the kernel's accept queue (with the TLS context of a TLS
    /// one); such a listener offers again only once that connection is taken.
    private var deferredAccepts: [(Listener, SnapshotPublisher<TLSListenerContext>?, Bool)] = []
    /// HTTP/2 connections with frames to write, written once at the end of the loop turn: the responses of
    /// every backend read in one turn go out in one TLS record and one write, not one (or two) per stream event.
    private var pendingH2Writes: [H2Connection] = []
    private var endOfTurn: LoopCheck?
    private var endOfTurnClosed = false
    /// Backend slots with a request slot freed and requests waiting for one (`max_connections`).
    private var pendingGrants: [WorkerBackend] = []
    /// `grantQueued`'s working copy of `pendingGrants` (kept, so a grant pass allocates nothing).
    private var grantBatch: [WorkerBackend] = []
    /// Backend slots with waiters, for the sweep's queue timeout.
    private var queuedSlots: [WorkerBackend] = []
    var nextQueueTicket: UInt64 = 0
    private var releasedSinceTrim = 0
    private var lastTrim: UInt64 = 0
    /// Ended HTTP/2 streams kept with their buffers, so a new stream allocates nothing; bounded.
    private var spareH2Streams: [H2Stream] = []
    static let maxSpareH2Streams = 256
    /// Request states given back by HTTP/1.1 connections between requests (`RequestState`), reused by the next
    /// request on any connection of this worker; bounded, so a burst leaves at most this many behind.
    private var spareRequestStates: [RequestState] = []
    static let maxSpareRequestStates = 256
    /// The share of recent HTTP/1.1 responses that closed their connection, in 1/65,536ths: an average over
    /// about the last 16 (`noteResponseEnd`). Wake-up coalescing applies only while it is below a quarter.
    private var closingShare = 0
    static let coalescingMaxClosingShare = 1 << 14
    /// HTTP/1.1 connections holding a request state now: reading a request or answering one.
    private(set) var requestStatesInUse = 0

    /// Monotonic nanoseconds when something uses them (latency histograms or the access log), else 0: with
    /// both off the data path reads no clock.
    @inline(__always)
    func clock() -> UInt64 { settings.recordLatency || accessLog != nil ? uv_hrtime() : 0 }

    init(id: Int, loop: EventLoop, settings: ProxySettings, routing: SnapshotPublisher<RoutingState>) {
        self.id = id
        self.loop = loop
        self.settings = settings
        self.routing = routing
        var seed = UInt64(0)
        withUnsafeMutableBytes(of: &seed) { raw in
            _ = uv_random(nil, nil, raw.baseAddress, raw.count, 0, nil)
        }
        requestIDBase = seed
        tlsAdmission = AcceptAdmission(
            perTurn: settings.tlsHandshakesPerTurn, perSecond: settings.tlsHandshakesPerSecond, now: loop.now)
        plainAdmission = AcceptAdmission(perTurn: settings.acceptsPerTurn, perSecond: nil, grows: true, now: loop.now)
        // The loop's wake-up settings; coalescing weighs the exchanges under way.
        loop.busyPolls = settings.busyPolls
        loop.coalesceNanos = settings.coalesceMicros * 1_000
        loop.pending = { [unowned self] in self.exchangesForCoalescing }
        // Queue grants run as soon as the callback that freed a slot has returned (`scheduleGrant`).
        loop.afterEvent = { [unowned self] in if !self.pendingGrants.isEmpty { self.grantQueued() } }
    }

    /// Binds one traffic listener, TLS when `tls` is given: one context per listener, shared by every worker so
    /// a session resumes on any of them, and read at each accept so a reloaded certificate serves the next
    /// connection (open ones keep theirs). `reusePort` when several workers share the address. With
    /// `accepting: false` it is bound but accepts only after `startAccepting()` (a successor in a hot upgrade).
    func listen(
        on address: SocketAddress, reusePort: Bool, tls: SnapshotPublisher<TLSListenerContext>? = nil, http2: Bool = true,
        accepting: Bool = true
    ) throws(SetupError) -> SocketAddress {
        add(try Listener(loop: loop, address: address, reusePort: reusePort, accepting: accepting), tls: tls, http2: http2)
    }

    /// Hot upgrade: takes over `fd`, a listening socket the previous process passed, accepting on it only after
    /// `startAccepting()`. The listener owns `fd` (closed on a throw too).
    func adopt(
        socket fd: Int32, tls: SnapshotPublisher<TLSListenerContext>?, http2: Bool = true
    ) throws(SetupError) -> SocketAddress {
        add(try Listener(loop: loop, adopting: fd), tls: tls, http2: http2)
    }

    /// Starts accepting on every listener not yet accepting. Throws what `listen(2)` refused.
    func startAccepting() throws(SetupError) {
        for l in listeners { try l.startAccepting() }
    }

    private func add(_ l: Listener, tls: SnapshotPublisher<TLSListenerContext>?, http2: Bool) -> SocketAddress {
        l.onAccept = { [unowned self] listener in self.accept(from: listener, tls: tls, http2: http2) }
        l.onError = { [unowned self] _ in self.counters.acceptErrors &+= 1 }
        listeners.append(l)
        if sweepTimer == nil {
            // Deadlines are checked to within a quarter of the shortest of these; the pool purge runs on the first
            // tick at or after its interval.
            let shortest = min(settings.timeouts.clientHeader, settings.timeouts.upstreamConnect, settings.poolPurgeMs)
            let tick = max(50, min(1000, shortest / 4))
            nextPoolPurge = loop.now + settings.poolPurgeMs
            let t = LoopTimer(loop: loop) { [unowned self] in self.sweep() }
            t.start(timeout: tick, repeat: tick)
            t.unref()
            sweepTimer = t
        }
        return l.boundAddress
    }

    /// Takes the next connection queued on `listener`, unless a cap leaves it queued for a later turn (the
    /// listener then offers nothing more until it is taken). `again`: a deferred one, counted when it was first
    /// deferred.
    private func accept(
        from listener: Listener, tls: SnapshotPublisher<TLSListenerContext>?, http2: Bool, again: Bool = false
    ) {
        if let tls, tlsAdmission.isLimited, !isDraining {
            switch tlsAdmission.admit(now: loop.now) {
            case .admit:
                armAcceptAdmissionTimer(after: 0)
            case .nextTurn:
                if !again { counters.tlsAcceptsDeferred.perTurn &+= 1 }
                deferredAccepts.append((listener, tls, http2))
                armAcceptAdmissionTimer(after: 0)
                return
            case .wait(let ms):
                if !again { counters.tlsAcceptsDeferred.perSecond &+= 1 }
                deferredAccepts.append((listener, tls, http2))
                armAcceptAdmissionTimer(after: ms)
                return
            }
        } else if tls == nil, plainAdmission.isLimited, !isDraining {
            if plainAdmission.admit(now: loop.now) == .nextTurn {
                if !again { counters.acceptsDeferred &+= 1 }
                deferredAccepts.append((listener, nil, http2))
                armAcceptAdmissionTimer(after: 0)
                return
            }
            armAcceptAdmissionTimer(after: 0)
        }
        let socket = HandledTCPStream(loop: loop)
        guard listener.accept(into: socket) else { return }
        counters.connectionsTotal &+= 1
        if clients.count >= settings.maxClientConnections || isDraining {
            // Refused before any connection object exists: the socket has no handler to call back.
            counters.connectionsRefused &+= 1
            socket.close()
            return
        }
        var addressKey: ClientAddressLimit.Key?
        if let perClient = settings.perClientLimit {
            if let key = perClient.key(for: listener.acceptedPeer) {
                guard perClient.admit(key) else {
                    // Closed at once with no answer, like a refusal over max_client_connections: reading the
                    // request to answer 429 would cost this client's excess connections a buffer and a parse.
                    counters.connectionsRefusedPerClient &+= 1
                    socket.close()
                    return
                }
                addressKey = key
            }
        }
        // TCP_NODELAY needs no call here: the listening socket has it, and Linux copies it to accepted sockets.
        let conn: ClientConnection
        if let tls {
            let served = tls.load()
            let session: TLSSession
            do { session = try TLSSession(context: served.tls) } catch {
                if let addressKey { settings.perClientLimit?.release(addressKey) }
                counters.tlsFailures &+= 1
                counters.tlsFailureReasons[TLSFailureReason.other.rawValue] &+= 1
                socket.close()
                return
            }
            let stream = TLSStream(socket: socket, session: session, worker: self, subjectField: served.subjectField)
            conn = ClientConnection(worker: self, stream: stream, tls: stream, http2: http2)
            stream.handler = conn
        } else {
            conn = ClientConnection(worker: self, stream: socket, http2: http2)
            socket.handler = conn
        }
        conn.addressKey = addressKey
        // The worker's list holds the connection until its stream reports the close.
        clients.insert(conn)
        conn.start(peer: listener.acceptedPeer)
    }

    /// One timer for both caps: a new turn's share (timeout 0: the next loop turn), or the rate's next token.
    /// The earlier of two requests wins: a plain accept deferred to the next turn must not wait for the TLS
    /// rate's next token, and the turn that fires re-defers what still has to wait.
    private func armAcceptAdmissionTimer(after ms: UInt64) {
        let due = loop.now &+ ms
        if admissionTimerArmed && admissionTimerDue <= due { return }
        admissionTimerDue = due
        if admissionTimer == nil {
            let t = LoopTimer(loop: loop) { [unowned self] in self.admissionTurn() }
            t.unref()
            admissionTimer = t
        }
        admissionTimer?.start(timeout: ms)
        admissionTimerArmed = true
    }

    private func admissionTurn() {
        admissionTimerArmed = false
        tlsAdmission.newTurn()
        plainAdmission.newTurn()
        // Every deferred connection is offered again; the caps may defer it once more.
        let waiting = deferredAccepts
        deferredAccepts.removeAll(keepingCapacity: true)
        for (listener, tls, http2) in waiting { accept(from: listener, tls: tls, http2: http2, again: true) }
    }

    func clientClosed(_ conn: ClientConnection) {
        clients.remove(conn)
        if let key = conn.addressKey {
            conn.addressKey = nil
            settings.perClientLimit?.release(key)
        }
    }
    /// Upstream connections open now over every backend: connecting, busy or idle. Like a backend's count, a
    /// connection leaves it when its close begins (`upstreamClosing`), while `upstreams` keeps it to its close
    /// callback.
    private(set) var openUpstreams = 0

    func upstreamOpened(_ conn: UpstreamConnection) {
        upstreams.insert(conn)
        openUpstreams += 1
        if openUpstreams > counters.upstreamPeak { counters.upstreamPeak = openUpstreams }
    }
    func upstreamClosing() { openUpstreams -= 1 }
    func upstreamClosed(_ conn: UpstreamConnection) { upstreams.remove(conn) }

    /// `connection` has frames to write: it pumps once, after this turn's I/O callbacks.
    func scheduleWrite(_ connection: H2Connection) {
        if endOfTurnClosed { return }
        pendingH2Writes.append(connection)
        startEndOfTurn()
    }

    /// A request slot of `slot` was freed and requests wait for one: they are granted as soon as the libuv
    /// callback that freed it returns (`EventLoop.requestAfterEvent`), after the connection that freed it has
    /// released its upstream to the pool for them to reuse, and never from inside another connection's call. A
    /// slot freed from a timer, an async wake-up or the end of a turn is granted at the end of the turn. A slot
    /// already scheduled is left as it is: one pass grants every waiter a free slot allows.
    ///
    /// Grants used to wait for the end of the loop turn. Under load libuv's poll phase goes on for up to 48 rounds
    /// of 1,024 events before a turn ends (`uv__io_poll`): about 1.7 s in a debug build with 5,000 clients. All
    /// that time freed slots stayed empty beside idle pooled connections, while every new request for the server
    /// queued behind the waiters (they go first), filled the queue and was answered 503 at once. A wake-up through
    /// the loop's eventfd is no better: it waits in epoll's ready list behind every socket already ready.
    func scheduleGrant(_ slot: WorkerBackend) {
        if endOfTurnClosed || slot.grantScheduled { return }
        slot.grantScheduled = true
        pendingGrants.append(slot)
        loop.requestAfterEvent()
        startEndOfTurn()
    }

    /// `slot` has waiters: the sweep checks their queue timeout.
    func noteQueued(_ slot: WorkerBackend) {
        guard !slot.inQueuedList else { return }
        slot.inQueuedList = true
        queuedSlots.append(slot)
    }

    private func startEndOfTurn() {
        if let endOfTurn {
            endOfTurn.start()
        } else {
            let check = LoopCheck(loop: loop) { [unowned self] in self.endTurn() }
            endOfTurn = check
            check.start()
        }
    }

    private func endTurn() {
        if !pendingGrants.isEmpty { grantQueued() }
        writePendingH2()
    }

    /// Each slot's waiters, oldest first, while it has a request slot free. A granted request may fail at once
    /// and free its slot again: the loop goes on until the slot is full or nobody waits.
    private func grantQueued() {
        // Swapped with a kept array, so a grant pass allocates nothing; grants scheduled during the pass go to
        // the emptied `pendingGrants` for the next one. A pass never starts inside another.
        guard grantBatch.isEmpty else { return }
        swap(&grantBatch, &pendingGrants)
        for slot in grantBatch {
            slot.grantScheduled = false
            while slot.inFlight < slot.queueCap, let waiter = slot.popWaiter() { waiter.queueGranted() }
        }
        grantBatch.removeAll(keepingCapacity: true)
    }

    /// Requests that waited `timeouts.queue` are answered 503 (from the sweep).
    private func expireQueues(now: UInt64) {
        guard !queuedSlots.isEmpty else { return }
        guard now > settings.queueTimeoutMs else { return }
        let deadline = now - settings.queueTimeoutMs
        for slot in queuedSlots { slot.expireWaiters(queuedBefore: deadline) }
        queuedSlots.removeAll { slot in
            if slot.queued > 0 { return false }
            slot.inQueuedList = false
            return true
        }
    }

    private func writePendingH2() {
        // A pump may schedule another (a stream settled from one of nghttp2's callbacks): those are written in
        // this turn too, since the loop may next wait in poll for as long as nothing happens.
        var rounds = 0
        while !pendingH2Writes.isEmpty && rounds < 8 {
            rounds += 1
            var batch = pendingH2Writes
            pendingH2Writes.removeAll(keepingCapacity: true)
            for c in batch { c.writeScheduled() }
            batch.removeAll()
        }
        if pendingH2Writes.isEmpty && pendingGrants.isEmpty { endOfTurn?.stop() }
    }

    func keepSpare(_ stream: H2Stream) {
        guard spareH2Streams.count < Self.maxSpareH2Streams, !endOfTurnClosed else { return }
        stream.makeSpare()
        spareH2Streams.append(stream)
    }

    func takeSpareH2Stream() -> H2Stream? { spareH2Streams.popLast() }

    /// A request state for a connection whose request begins: the most recently given back (its memory is the
    /// warmest), else a new one.
    @inline(__always)
    func takeRequestState() -> RequestState {
        requestStatesInUse += 1
        return spareRequestStates.popLast() ?? RequestState(settings: settings)
    }

    /// A connection is done with `state`: its request is over, or the connection closed. `reusable`: nothing
    /// refers to it any more, so it may serve another connection.
    func giveBack(_ state: RequestState, reusable: Bool = true) {
        requestStatesInUse -= 1
        guard reusable, spareRequestStates.count < Self.maxSpareRequestStates, !endOfTurnClosed else { return }
        state.makeSpare()
        spareRequestStates.append(state)
    }

    /// Idle connections gave `bytes` back to malloc (`ClientConnection.releaseIdleBuffers`). Freed blocks
    /// between live ones stay in malloc's free lists and keep the process's resident memory up; once 256 KB
    /// have been given back, and at most once a second, `malloc_trim` returns the free pages to the kernel (it
    /// walks the free lists: about a millisecond for a large heap, from the sweep, never per request).
    func noteIdleRelease(bytes: Int) {
        releasedSinceTrim &+= bytes
        if releasedSinceTrim >= 256 * 1024 && loop.now &- lastTrim >= 1_000 {
            releasedSinceTrim = 0
            lastTrim = loop.now
            _ = lb_malloc_trim()
        }
    }

    /// A fresh request id: a random per-worker base plus a counter (unique, no allocation).
    func nextRequestID() -> UInt64 {
        requestCounter &+= 1
        return requestIDBase &+ (requestCounter &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Periodic deadline check for every connection (timeouts are deadlines, not per-connection timers), and once
    /// per `timeouts.upstream_pool_purge` the purge of every backend's idle pool: the one timer of the worker.
    private func sweep() {
        let now = loop.now
        clients.forEach { $0.checkDeadline(now: now) }
        upstreams.forEach { $0.checkDeadline(now: now) }
        expireQueues(now: now)
        if now >= nextPoolPurge {
            nextPoolPurge = now + settings.poolPurgeMs
            for b in routing.load().backends {
                let slot = b.slot(self)
                slot.purgeIdle()
                if slot.relaxLearntLimit(now: now), slot.queued > 0, let (connections, _) = connectionLimit(b, slot) {
                    slot.queueCap = connections
                    scheduleGrant(slot)
                }
            }
        }
    }

    /// What the loop's coalescing weighs: the exchanges under way, or none while clients close after each response.
    private var exchangesForCoalescing: Int {
        closingShare < Self.coalescingMaxClosingShare ? counters.inFlight : 0
    }

    /// An HTTP/1.1 response ended, keeping its connection or closing it.
    ///
    /// Coalescing (`coalesce_us`) pays when requests arrive on open connections: one timed sleep gathers the
    /// reads and responses of many exchanges. When clients open a connection for every request or so, each
    /// request is a chain of wake-ups in sequence (the accept, the request, the response, the close), and a
    /// sleep at each step only lengthens the chain: measured with `Connection: close` on every request and 64
    /// clients, throughput went from 0.84 to 1.02 of nginx's with coalescing off. So coalescing stays off while
    /// a quarter or more of the recent responses closed their connection.
    @inline(__always)
    func noteResponseEnd(keptConnection: Bool) {
        closingShare += ((keptConnection ? 0 : 1 << 16) - closingShare) >> 4
    }

    /// Graceful shutdown, step 1: stop accepting, close idle clients, let in-flight exchanges finish with
    /// `Connection: close`. `closeIdle: false` (a hot upgrade's drain) leaves idle keep-alive clients open: their
    /// next response carries `Connection: close`, so none races a close against a request it is sending; the
    /// idle timeout or the drain deadline ends those that send nothing.
    func beginDrain(closeIdle: Bool = true) {
        // A connection a cap left queued is still the kernel's: in a hot upgrade the successor serves that same
        // queue; otherwise it goes with the listener, as every connection still queued does.
        deferredAccepts.removeAll()
        isDraining = true
        for l in listeners { l.close() }
        listeners = []
        clients.forEach { if closeIdle { $0.drain() } else { $0.current?.exchange.drain() } }
        upstreams.forEach { $0.closeIfIdle() }
    }

    /// Graceful shutdown, step 2 (deadline reached or nothing left): close everything.
    func closeAll() {
        for l in listeners { l.close() }
        listeners = []
        deferredAccepts.removeAll()
        admissionTimer?.close()
        admissionTimer = nil
        endOfTurnClosed = true
        endOfTurn?.close()
        endOfTurn = nil
        pendingH2Writes.removeAll()
        pendingGrants.removeAll()
        queuedSlots.removeAll()
        spareH2Streams.removeAll()
        spareRequestStates.removeAll()
        sweepTimer?.close()
        sweepTimer = nil
        accessLog?.close()
        clients.forEach { $0.close() }
        upstreams.forEach { $0.close() }
    }

    var isIdle: Bool { clients.count == 0 }
}

import CLibUV
import LBCore
import LBHTTP
import LBTLS
import LBUV

/// One client connection: the shell that carries an `Exchange` over a byte stream (TCP today). It reads, feeds
/// the parser and the exchange, and performs the exchange's actions in order; every decision is the exchange's.
/// Requests are answered strictly in order: the next head is not parsed until the current exchange is over. Bytes read
/// but not yet usable stay in `pending` and reading stops, so one connection never holds more than one read
/// buffer of unprocessed input.
///
/// No call re-enters the parse loop: upstream events arrive from libuv callbacks only (an upstream reports a
/// failure from its close callback, never from inside a call this connection made), and performing an action
/// never starts a parse; an action that lets the parser go on sets `resumeInput` instead.
///
/// The state below is the shell's own, touched only here and in `ClientConnection+Actions.swift` and
/// `ClientConnection+Upstream.swift`.
final class ClientConnection: ByteStreamHandler, ListLinked, UpstreamOwner, QueueWaiter {
    // The fields are what every connection pays for while it sits idle, so they are kept to what an idle plain
    // connection needs, and fit malloc's 128-byte size class: what only some connections use is in `extras`.
    unowned(unsafe) let worker: Worker
    /// The transport; this connection owns it and is its handler until it reports `streamClosed()`.
    let stream: any ByteStream
    /// The state of the request under way, taken from the worker when a request's first bytes arrive and given
    /// back once its response is complete (`RequestState`): nil while the connection is idle, and always on an
    /// HTTP/2 connection.
    var current: RequestState?
    /// TLS, HTTP/2, a partly read h2c preface, a long client address: nil for a plain HTTP/1.1 connection from an
    /// IPv4 client.
    private(set) var extras: ConnectionExtras?
    var listPrev: ClientConnection?
    var listNext: ClientConnection?

    /// The client-side timeout (idle between requests, or the head's deadline), checked by the worker's sweep.
    var timer = ConnectionTimer()

    /// The client's address as text when it fits in 15 bytes (every IPv4 address), its length in the last byte;
    /// a longer one is in `extras` (`withClientAddress`).
    private var shortAddress: (UInt64, UInt64) = (0, 0)
    /// This connection's counter in `limits.max_connections_per_client`'s table, released when it closes.
    var addressKey: ClientAddressLimit.Key?

    var peerClosedWrite = false
    /// The buffers were given back in the current idle stretch (`releaseIdleBuffers`); the next request clears it.
    var idleBuffersReleased = false
    var readPausedForBackpressure = false
    /// HTTP/2 is offered on this listener (ALPN h2, or the h2c preface on plain HTTP).
    let offersHTTP2: Bool
    /// Until the first bytes say which protocol the client speaks: HTTP/2 (ALPN or preface) or HTTP/1.x.
    var choosingProtocol = true
    var inList = false

    init(worker: Worker, stream: any ByteStream, tls: TLSStream<TLSSession>? = nil, http2: Bool = false) {
        self.worker = worker
        self.stream = stream
        if let tls { extras = ConnectionExtras(tls: tls) }
        offersHTTP2 = http2
    }

    private func ensureExtras() -> ConnectionExtras {
        if let extras { return extras }
        let e = ConnectionExtras(tls: nil)
        extras = e
        return e
    }

    /// `stream` when it is TLS, for what the handshake established (the client certificate's subject field).
    var tls: TLSStream<TLSSession>? { extras?.tls }
    /// Set once the client spoke HTTP/2: every stream event goes there from then on.
    var h2: H2Connection? {
        get { extras?.h2 }
        set { ensureExtras().h2 = newValue }
    }
    /// The first bytes of a plain connection while they still match the h2c preface.
    var prefacePrefix: [UInt8] {
        get { extras?.prefacePrefix ?? [] }
        set {
            if newValue.isEmpty && extras == nil { return }
            ensureExtras().prefacePrefix = newValue
        }
    }
    /// `accessLogTLSFields()`, once made.
    var tlsLogFields: [UInt8]? {
        get { extras?.tlsLogFields }
        set { ensureExtras().tlsLogFields = newValue }
    }

    /// Calls `body` with the client's address as text ("127.0.0.1"; empty when the socket had none).
    @inline(__always)
    func withClientAddress<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let long = extras?.longAddress { return long.withUnsafeBytes(body) }
        return withUnsafeBytes(of: shortAddress) { raw in
            body(UnsafeRawBufferPointer(rebasing: raw[0..<Int(raw[15])]))
        }
    }

    /// Keeps `text` as this connection's client address: inline when it fits, else in `extras`.
    private func setClientAddress(_ text: [UInt8]) {
        if text.count <= 15 {
            withUnsafeMutableBytes(of: &shortAddress) { raw in
                raw.copyBytes(from: text)
                raw[15] = UInt8(text.count)
            }
        } else {
            ensureExtras().longAddress = text
        }
    }

    // The request state's parts under the names the shell uses; only while `current` is set.
    @inline(__always) private var cur: RequestState { current.unsafelyUnwrapped }
    var parser: HTTPParser {
        _read { yield cur.parser }
        _modify { let c = cur; yield &c.parser }
    }
    var exchange: Exchange {
        _read { yield cur.exchange }
        _modify { let c = cur; yield &c.exchange }
    }
    var actions: ActionQueue {
        _read { yield cur.actions }
        _modify { let c = cur; yield &c.actions }
    }
    var pending: [UInt8] {
        _read { yield cur.pending }
        _modify { let c = cur; yield &c.pending }
    }
    var outgoingHead: [UInt8] {
        _read { yield cur.outgoingHead }
        _modify { let c = cur; yield &c.outgoingHead }
    }
    var routing: RoutingState? {
        get { current?.routing }
        set { cur.routing = newValue }
    }
    var upstreamSlot: WorkerBackend? {
        get { current?.upstreamSlot }
        set { cur.upstreamSlot = newValue }
    }
    var queuedSlot: WorkerBackend? {
        get { current?.queuedSlot }
        set { cur.queuedSlot = newValue }
    }
    var keyHash: UInt64 {
        get { cur.keyHash }
        set { cur.keyHash = newValue }
    }
    var headStartMs: UInt64 {
        get { cur.headStartMs }
        set { cur.headStartMs = newValue }
    }
    /// Nil and false while no request is under way.
    var upstream: UpstreamConnection? {
        get { current?.upstream }
        set { cur.upstream = newValue }
    }
    var resumeInput: Bool {
        get { current?.resumeInput ?? false }
        set { cur.resumeInput = newValue }
    }
    var upstreamPausedForClient: Bool {
        get { current?.upstreamPausedForClient ?? false }
        set { cur.upstreamPausedForClient = newValue }
    }
    var queueTicket: UInt64 {
        get { current?.queueTicket ?? 0 }
        set { cur.queueTicket = newValue }
    }

    /// No request is under way (no state held, or the one held is quiet): nothing to answer, parse or replay.
    var isQuiet: Bool { current?.isQuiet ?? true }

    /// A request's bytes arrived: the connection needs its request state, and the state's write buffer if the
    /// stream has none.
    @inline(__always) private func takeRequestState() {
        guard current == nil else { return }
        let c = worker.takeRequestState()
        current = c
        if stream.out.capacity == 0 { swap(&c.writeBuffer, &stream.out) }
    }

    /// The response is complete and nothing is left to parse: the request state goes back to the worker, with
    /// the write queue's storage once everything queued has been handed to the kernel.
    @inline(__always) func giveBackRequestStateIfQuiet() {
        guard let c = current, c.isQuiet else { return }
        current = nil
        if stream.writeQueueBytes == 0 && stream.out.isEmpty { swap(&c.writeBuffer, &stream.out) }
        worker.giveBack(c)
    }

    /// Starts serving a connection just accepted from `peer`.
    func start(peer: sockaddr_storage) {
        worker.addressScratch.removeAll(keepingCapacity: true)
        SocketAddress.formatIP(peer, into: &worker.addressScratch)
        setClientAddress(worker.addressScratch)
        // A TLS client has client_header to complete its handshake and first head: a connection that never
        // finishes a handshake must not hold a slot for the whole idle timeout.
        timer.enter(stream.isEncrypted ? .clientHeader : .clientIdle, now: loop.now, limits: worker.timerLimits)
        startReading()
    }

    // The stream's calls under the names the shell uses.
    var loop: EventLoop { worker.loop }
    var isClosing: Bool { stream.isClosing }
    var writeQueueBytes: Int { stream.writeQueueBytes }
    @inline(__always) func append(_ bytes: UnsafeRawBufferPointer) { stream.out.append(contentsOf: bytes) }
    @inline(__always) func append(_ bytes: [UInt8]) { stream.out.append(contentsOf: bytes) }
    func flush() { stream.flush() }
    func startReading() { stream.startReading() }
    func stopReading() { stream.stopReading() }
    func close() { stream.close() }
    func closeAfterFlush() { stream.closeAfterFlush() }
    func abort() { stream.abort() }

    /// Borrowed, not copied: the settings hold strings and arrays, and a copy per use would retain and release them.
    var settings: ProxySettings {
        _read { yield worker.settings }
    }

    // MARK: input

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        if let h2 = extras?.h2 {
            h2.streamRead(bytes)
            return
        }
        if choosingProtocol {
            chooseProtocol(bytes)
            return
        }
        worker.counters.bytesIn &+= UInt64(bytes.count)
        takeRequestState()
        if exchange.state == .tunnel {
            upstream?.tunnel(bytes)
        } else {
            if exchange.isIdle {
                timer.headStarted(now: loop.now, limits: worker.timerLimits)
                if parser.isBetweenMessages && pending.isEmpty { headStartMs = loop.now }
            }
            let used = run(bytes)
            if used < bytes.count && !isClosing {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
                stopReading()
            }
        }
        upstream?.flush()
        applyBackpressureTowardUpstream()
        giveBackRequestStateIfQuiet()
    }

    /// The parse loop: feeds `input` to the parser and the exchange while the exchange reads, performing each
    /// event's actions before the next; returns how much of `input` was used.
    private func run(_ input: UnsafeRawBufferPointer) -> Int {
        var pos = 0
        while !isClosing && exchange.readsRequest {
            let event = parser.next(input, &pos)
            switch event {
            case .needMore:
                return pos
            case .head:
                beginExchange()
            case .body(let range):
                if exchange.bodyGoesUpstream, let up = upstream {
                    up.sendBody(UnsafeRawBufferPointer(rebasing: input[range]), chunked: exchange.request.chunked)
                }
            case .end:
                exchange.requestEnd(&actions)
            case .error(let e):
                if exchange.isIdle { exchange.rejectHead(status: e.status, &actions) } else {
                    exchange.requestFailed(status: e.status, &actions)
                }
                perform()
                return input.count
            }
            perform()
        }
        resumeInput = false
        return isClosing ? input.count : pos
    }

    /// Replays bytes kept in `pending` once the exchange can take them, then resumes reading.
    func drainPending() {
        resumeInput = false
        var buf = pending
        pending = []
        let used = buf.withUnsafeBytes { run($0) }
        if isClosing { return }
        upstream?.flush()
        if used < buf.count {
            buf.removeFirst(used)
            pending = buf
            return
        }
        buf.removeAll(keepingCapacity: true)
        pending = buf
        if !readPausedForBackpressure && !peerClosedWrite && exchange.state != .done { startReading() }
        giveBackRequestStateIfQuiet()
    }

    func streamReadEnd(_ error: UVError) {
        if let h2 {
            h2.streamReadEnd(error)
            return
        }
        peerClosedWrite = true
        // Closed between requests: nothing to answer.
        guard current != nil else { return closeClient(afterFlush: false) }
        if exchange.isAwaitingRequestBody { worker.counters.uploadsAborted &+= 1 }
        exchange.clientEOF(&actions)
        settle()
    }

    private func beginExchange() {
        let head = parser.head
        worker.counters.requests &+= 1
        worker.counters.inFlight += 1
        idleBuffersReleased = false
        timer.enter(.none, now: 0, limits: worker.timerLimits)
        routing = nil
        exchange.begin(RequestFacts(head), draining: worker.isDraining, now: worker.clock(), &actions)
    }

    // MARK: carrying out the exchange's actions

    /// Performs the queued actions in order; an action may feed the exchange, which queues more.
    private func perform() {
        var i = 0
        while i < actions.count {
            let action = actions[i]
            i += 1
            perform(action)
        }
        actions.removeAll()
    }

    /// After an event from outside the parse loop: perform, then let the parser go on if an action allowed it.
    /// What the client is sent goes out when the actions say (a complete response, an interim one, an error)
    /// or at the end of the upstream read that produced it (`.readDone`): one write per read, not per event.
    func settle() {
        perform()
        if resumeInput && !isClosing { drainPending() }
        upstream?.flush()
    }

    // MARK: timers and shutdown

    /// Graceful shutdown: idle connections close now, busy ones after their response.
    func drain() {
        if let h2 {
            h2.drain()
            return
        }
        current?.exchange.drain()
        if isQuiet { close() }
    }

    func checkDeadline(now: UInt64) {
        guard !isClosing else { return }
        // A client idle for a second (a keep-alive one between requests, or a new one that has sent nothing yet)
        // gives its buffers back: a busy one keeps them, so the data path allocates nothing.
        // Only once everything written has left: the last response of a slow reader may still be draining after
        // its exchange ended.
        if !idleBuffersReleased, h2 == nil, stream.writeQueueBytes == 0,
            timer.hasLasted(ConnectionTimer.idleBeforeBufferRelease, in: .clientIdle, now: now, limits: worker.timerLimits)
                || (timer.hasLasted(
                    ConnectionTimer.idleBeforeBufferRelease, in: .clientHeader, now: now, limits: worker.timerLimits)
                    && isQuiet)
        {
            idleBuffersReleased = true
            releaseIdleBuffers()
        }
        if let h2 {
            h2.checkDeadline(now: now)
            return
        }
        switch timer.expired(now: now) {
        case .clientIdle:
            worker.counters.idleTimeouts &+= 1
            close()
        case .clientHeader:
            worker.counters.headerTimeouts &+= 1
            if isQuiet { close() } else {
                exchange.rejectHead(status: 408, &actions)
                settle()
            }
        case .clientSend:
            // The client took nothing of its response for `client_send`: a reset says it was cut short, and the
            // exchange ends as the client's abort (its upstream is closed, not blamed).
            worker.counters.sendTimeouts &+= 1
            abort()
        default:
            break
        }
    }

    /// Between requests: the write queues' storage and OpenSSL's buffers (`ByteStream.releaseIdleBuffers`); the
    /// request state went back to the worker when the last response ended. The worker trims the heap once enough
    /// is given back, so the memory leaves the process rather than idling in malloc's free lists.
    private func releaseIdleBuffers() {
        worker.noteIdleRelease(bytes: stream.releaseIdleBuffers())
    }

    func streamClosed() {
        h2?.streamClosed()
        if let c = current {
            if exchange.isAwaitingRequestBody { worker.counters.uploadsAborted &+= 1 }
            exchange.clientClosed(&actions)
            perform()
            current = nil
            // Its upstream was dropped and its queue entry left by the actions just performed.
            worker.giveBack(c, reusable: c.upstream == nil && c.queuedSlot == nil)
        }
        worker.clientClosed(self)
    }
}

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
    unowned(unsafe) let worker: Worker
    /// The transport; this connection owns it and is its handler until it reports `streamClosed()`.
    let stream: any ByteStream
    /// `stream` when it is TLS, for what the handshake established (the client certificate's subject field).
    let tls: TLSStream<TLSSession>?
    /// `accessLogTLSFields()`, once made.
    var tlsLogFields: [UInt8]?
    var parser: HTTPParser
    var exchange: Exchange
    /// The actions of the event being handled, performed in order (reused: no allocation per event).
    var actions = ActionQueue()
    /// Unconsumed input, kept while the current exchange cannot take it.
    var pending: [UInt8] = []
    var clientAddress: [UInt8] = []
    /// This connection's counter in `limits.max_connections_per_client`'s table, released when it closes.
    var addressKey: ClientAddressLimit.Key?
    /// Set by an action that lets the parser read on; an upstream event then replays `pending`.
    var resumeInput = false
    var peerClosedWrite = false
    /// The buffers were given back in the current idle stretch (`releaseIdleBuffers`); the next request clears it.
    var idleBuffersReleased = false
    var readPausedForBackpressure = false
    /// The upstream is paused because this client's write queue is over the high-water mark (a slow reader).
    var upstreamPausedForClient = false

    // The current exchange's routing and upstream.
    var routing: RoutingState?
    var upstream: UpstreamConnection?
    var upstreamSlot: WorkerBackend?
    /// The backend whose queue this request waits in (`max_connections`), and its entry's ticket.
    var queuedSlot: WorkerBackend?
    var queueTicket: UInt64 = 0
    var keyHash: UInt64 = 0
    var outgoingHead: [UInt8] = []
    /// Loop time (ms) when the first byte of the head being read arrived, for the access-log line of a
    /// rejected head: the loop's cached clock, so the data path pays no clock read for it.
    var headStartMs: UInt64 = 0

    /// The client-side timeout (idle between requests, or the head's deadline), checked by the worker's sweep.
    var timer = ConnectionTimer()

    /// HTTP/2 is offered on this listener (ALPN h2, or the h2c preface on plain HTTP).
    let offersHTTP2: Bool
    /// Until the first bytes say which protocol the client speaks: HTTP/2 (ALPN or preface) or HTTP/1.x.
    var choosingProtocol = true
    /// The first bytes of a plain connection while they still match the h2c preface.
    var prefacePrefix: [UInt8] = []
    /// Set once the client spoke HTTP/2: every stream event goes there from then on.
    var h2: H2Connection?

    var listPrev: ClientConnection?
    var listNext: ClientConnection?
    var inList = false

    init(worker: Worker, stream: any ByteStream, tls: TLSStream<TLSSession>? = nil, http2: Bool = false) {
        self.worker = worker
        self.stream = stream
        self.tls = tls
        offersHTTP2 = http2
        parser = HTTPParser(kind: .request, limits: worker.settings.limits)
        exchange = Exchange(retries: worker.settings.retries)
    }

    deinit { actions.deallocate() }

    func start() {
        stream.peerAddress(into: &clientAddress)
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
        if let h2 {
            h2.streamRead(bytes)
            return
        }
        if choosingProtocol {
            chooseProtocol(bytes)
            return
        }
        worker.counters.bytesIn &+= UInt64(bytes.count)
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
    }

    func streamReadEnd(_ error: UVError) {
        if let h2 {
            h2.streamReadEnd(error)
            return
        }
        peerClosedWrite = true
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
        exchange.drain()
        if exchange.isIdle && parser.isBetweenMessages && pending.isEmpty { close() }
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
                    && exchange.isIdle && parser.isBetweenMessages && pending.isEmpty)
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
            if parser.isBetweenMessages && pending.isEmpty { close() } else {
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

    /// Between requests: the write queues' storage and OpenSSL's buffers (`ByteStream.releaseIdleBuffers`), the
    /// last request head as read and as forwarded, and the action buffer. The worker trims the heap once enough
    /// is given back, so the memory leaves the process rather than idling in malloc's free lists.
    private func releaseIdleBuffers() {
        var released = stream.releaseIdleBuffers() + outgoingHead.capacity + pending.capacity
        outgoingHead = []
        if pending.isEmpty { pending = [] }
        if parser.isBetweenMessages && parser.holdsHeadBuffers {
            released += parser.head.bytes.capacity
            parser.dropHeadBuffers()
        }
        worker.noteIdleRelease(bytes: released)
    }

    func streamClosed() {
        h2?.streamClosed()
        if exchange.isAwaitingRequestBody { worker.counters.uploadsAborted &+= 1 }
        exchange.clientClosed(&actions)
        perform()
        worker.clientClosed(self)
        routing = nil
    }
}

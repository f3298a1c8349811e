import CLibUV
import LBCore

/// One client connection: parses requests, routes each to a backend, streams the request and the response,
/// and answers pipelined requests strictly in order (the next one is not parsed until the current response
/// is complete). Bytes read but not yet usable stay in `pending` and reading stops, so one connection never
/// holds more than one read buffer of unprocessed input.
final class ClientConnection: TCPConnection, ListLinked {
    enum Phase { case head, connecting, body, awaitingResponse, tunnel, closed }

    unowned(unsafe) let worker: Worker
    var parser: HTTPParser
    private var phase = Phase.head
    /// Unconsumed input, kept while the current exchange cannot take it.
    private var pending: [UInt8] = []
    private var clientAddress: [UInt8] = []

    // The current exchange.
    private var routing: RoutingState?
    private var upstream: UpstreamConnection?
    private var backendIndex = -1
    private var tried: [Int] = []
    private var keyHash: UInt64 = 0
    private var outgoingHead: [UInt8] = []
    private var method = HTTPMethod.get
    private var versionMinor = 1
    private var requestChunked = false
    private var requestHasBody = false
    private var requestComplete = false
    private var isUpgradeRequest = false
    private var responseStarted = false
    private var responseComplete = false
    private var responseChunked = false
    private var keepAlive = true
    private var peerClosedWrite = false
    private var readPausedForBackpressure = false
    // Measurements of the current exchange (uv_hrtime nanoseconds).
    private var exchangeActive = false
    private var requestStart: UInt64 = 0
    /// Loop time (ms) when the first byte of the head being read arrived, for the access-log line of a
    /// rejected head: the loop's cached clock, so the data path pays no clock read for it.
    private var headStartMs: UInt64 = 0
    private var requestSentAt: UInt64 = 0
    private var connectNanos: UInt64?
    private var responseNanos: UInt64?
    private var responseStatus = 0
    private var responseBytes: UInt64 = 0
    private var servedBy: Backend?
    /// What the client gets if no candidate is left: 503 when nothing was tried (or every connect was refused),
    /// else what the last attempt's failure means (502 bad/closed response, 504 timeout).
    private var failureStatus = 503
    /// The proxy answered `Expect: 100-continue` itself, so a backend's own 100 is not passed on twice.
    private var sentContinue = false
    /// True while `process` runs, so completion paths know whether a parse loop will go on by itself.
    private var inProcess = false

    /// The timeout of the current phase, checked by the worker's sweep.
    private var timer = ConnectionTimer()

    var listPrev: ClientConnection?
    var listNext: ClientConnection?
    var inList = false

    init(worker: Worker) {
        self.worker = worker
        parser = HTTPParser(kind: .request, limits: worker.settings.limits)
        super.init(loop: worker.loop)
    }

    func start() {
        uv_tcp_nodelay(handle, 1)
        peerAddress(into: &clientAddress)
        setIdleDeadline()
        startReading()
    }

    private var settings: ProxySettings { worker.settings }

    private func setIdleDeadline() {
        timer.enter(.clientIdle, now: loop.now, limits: worker.timerLimits)
    }

    // MARK: reading and parsing

    override func didRead(_ bytes: UnsafeRawBufferPointer) {
        worker.counters.bytesIn &+= UInt64(bytes.count)
        if phase == .tunnel {
            upstream?.timer.tunnelActivity(now: loop.now, limits: worker.timerLimits)
            upstream?.append(bytes)
            upstream?.flush()
            applyBackpressureTowardUpstream()
            return
        }
        if phase == .head {
            timer.headStarted(now: loop.now, limits: worker.timerLimits)
            if parser.isBetweenMessages && pending.isEmpty { headStartMs = loop.now }
        }
        let used = process(bytes)
        if used < bytes.count && !isClosing {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
            stopReading()
        }
        upstream?.flush()
        applyBackpressureTowardUpstream()
    }

    /// Feeds `input` to the parser as far as the current exchange allows; returns how much was used.
    private func process(_ input: UnsafeRawBufferPointer) -> Int {
        let outer = inProcess
        inProcess = true
        defer { inProcess = outer }
        var pos = 0
        while !isClosing {
            switch phase {
            case .head:
                switch parser.next(input, &pos) {
                case .needMore:
                    return pos
                case .head:
                    beginExchange()
                case .error(let e):
                    respondError(status: e.status, close: true)
                    return input.count
                case .body, .end:
                    return pos  // not reachable in this phase
                }
            case .body:
                switch parser.next(input, &pos) {
                case .needMore:
                    return pos
                case .body(let range):
                    // With no upstream (the proxy already answered) the rest of the body is discarded.
                    if let up = upstream { forwardRequestBody(UnsafeRawBufferPointer(rebasing: input[range]), to: up) }
                case .end:
                    requestComplete = true
                    if requestChunked { upstream?.append(HeadWriter.lastChunk) }
                    if responseComplete {
                        finishExchange()
                        continue
                    }
                    phase = .awaitingResponse
                    return pos
                case .error(let e):
                    // The request body broke its own framing: nothing more of it can be trusted.
                    failExchange(status: e.status)
                    return input.count
                case .head:
                    // The phase says a body is being read, so the parser cannot be at a new head.
                    assertionFailure("request head while the previous request's body was expected")
                    return pos
                }
            case .connecting, .awaitingResponse, .tunnel, .closed:
                return pos
            }
        }
        return input.count
    }

    /// Replays bytes kept in `pending` once the exchange can take them, then resumes reading.
    private func drainPending() {
        // Always run the parser, even on no bytes: a body-less request ends right after its head.
        var buf = pending
        pending = []
        let used = buf.withUnsafeBytes { process($0) }
        if isClosing { return }
        upstream?.flush()
        if used < buf.count {
            buf.removeFirst(used)
            pending = buf
            return
        }
        buf.removeAll(keepingCapacity: true)
        pending = buf
        if !readPausedForBackpressure && phase != .closed && !peerClosedWrite {
            startReading()
        }
    }

    override func didReadEnd(_ error: UVError) {
        peerClosedWrite = true
        switch phase {
        case .head where parser.isBetweenMessages && pending.isEmpty:
            close()
        case .awaitingResponse,
             .connecting where !requestHasBody:
            // Half-close after a complete request: still deliver the response, then close. (A body-less request
            // waiting for its connect is complete too; with a body, EOF here would truncate it.)
            keepAlive = false
        case .tunnel:
            upstream?.closeAfterFlush()
            closeAfterFlush()
        default:
            close()
        }
    }

    // MARK: routing

    private func beginExchange() {
        let head = parser.head
        worker.counters.requests &+= 1
        worker.counters.inFlight += 1
        exchangeActive = true
        requestStart = worker.clock()
        connectNanos = nil
        responseNanos = nil
        responseStatus = 0
        responseBytes = 0
        servedBy = nil
        failureStatus = 503
        sentContinue = false
        method = head.method
        versionMinor = head.versionMinor
        keepAlive = head.keepAlive && !worker.isDraining
        requestChunked = head.framing == .chunked
        requestHasBody = head.framing != .none && head.framing != .contentLength(0)
        requestComplete = false
        responseStarted = false
        responseComplete = false
        isUpgradeRequest = head.isUpgrade
        tried.removeAll(keepingCapacity: true)
        timer.enter(.none, now: 0, limits: worker.timerLimits)
        if method == .connect {
            respondError(status: 405, close: true)
            return
        }
        let state = worker.routing.load()
        routing = state
        keyHash = RoutingKey.hash(head, source: settings.keySource, clientAddress: clientAddress,
                                  snapshot: state.snapshot, fellBack: &worker.counters.keyFallbacks)
        outgoingHead.removeAll(keepingCapacity: true)
        _ = clientAddress.withUnsafeBytes { addr in
            HeadWriter.writeRequest(head, clientAddress: addr, requestID: worker.nextRequestID(),
                                    options: settings.forwarding, into: &outgoingHead)
        }
        dispatch()
    }

    /// Sends the request to the best remaining candidate: a pooled connection if one is idle, else a new one.
    private func dispatch() {
        guard let state = routing else { return }
        let backends = state.backends
        // Bounded load when configured; otherwise this is the plain first-eligible pick.
        let pick = state.snapshot.pick(
            forKeyHash: keyHash,
            isEligible: { i in backends[i].isEligible && !tried.contains(i) },
            load: { i in backends[i].perWorker[worker.id].inFlight }, totalLoad: worker.upstreamInFlight)
        guard let index = pick, tried.count <= settings.retries else {
            if failureStatus == 503 { worker.counters.noServer &+= 1 }
            respondError(status: failureStatus, close: !requestComplete && requestHasBody)
            return
        }
        tried.append(index)
        backendIndex = index
        let backend = backends[index]
        let slot = backend.perWorker[worker.id]
        slot.stats.requests &+= 1
        slot.inFlight += 1
        worker.upstreamInFlight += 1
        servedBy = backend
        while let up = slot.idle.popLast() {
            if up.isClosing { continue }
            slot.stats.reused &+= 1
            upstream = up
            sendHead()
            return
        }
        let up = UpstreamConnection(worker: worker, backend: backend)
        upstream = up
        up.client = self
        phase = .connecting
        up.open()
    }

    private func sendHead() {
        guard let up = upstream else { return }
        up.attach(to: self, method: method)
        up.slot.stats.bytesOut &+= UInt64(outgoingHead.count)
        requestSentAt = worker.clock()
        // RFC 9110 §10.1.1: the client waits for 100 before its body; say it as soon as a backend is ready,
        // so neither side waits on the other (the Expect field itself is forwarded).
        if parser.head.expectContinue && versionMinor >= 1 && requestHasBody && !sentContinue {
            sentContinue = true
            append(ClientConnection.continueResponse)
            flush()
        }
        up.append(outgoingHead)
        if requestComplete {
            // A replay or retry of a request already read whole: what is pending is the next request.
            phase = .awaitingResponse
        } else {
            phase = .body
            // Inside `process` (a pooled backend answered at once) the running parse loop reads the body on.
            if !inProcess { drainPending() }
        }
        up.flush()
    }

    private func forwardRequestBody(_ bytes: UnsafeRawBufferPointer, to up: UpstreamConnection) {
        if bytes.isEmpty { return }
        if requestChunked { up.appendChunk(bytes) } else { up.append(bytes) }
        up.slot.stats.bytesOut &+= UInt64(bytes.count)
        // The response timeout counts from the last request byte sent, so a long upload is not cut short.
        up.timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
    }

    // MARK: events from the upstream side

    func upstreamConnected(_ up: UpstreamConnection, connectNanos: UInt64) {
        guard up === upstream else { return }
        self.connectNanos = connectNanos
        sendHead()
    }

    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    func upstreamConnectFailed(_ up: UpstreamConnection, timedOut: Bool) {
        guard up === upstream else { return }
        upstream = nil
        if timedOut { failureStatus = 504 }
        up.slot.stats.redispatches &+= 1
        up.backend.recordPassiveFailure()
        endInFlight()
        // Nothing was sent: any method may move to the next candidate.
        dispatch()
    }

    /// RFC 9110 §9.2.2: a request the client could have sent twice itself.
    private var isIdempotent: Bool {
        switch method {
        case .get, .head, .options, .trace, .put, .delete: return true
        default: return false
        }
    }

    func upstreamFailed(_ up: UpstreamConnection, cause: UpstreamFailure) {
        guard up === upstream else { return }
        upstream = nil
        endInFlight()
        // A reused connection closed before any byte is the keep-alive race, not a sick server.
        if !(cause == .closedBeforeResponse && up.wasReused) && !worker.isDraining {
            up.backend.recordPassiveFailure()
        }
        let status = cause == .timeout ? 504 : 502
        if !responseStarted {
            // The keep-alive race: a pooled connection the backend had closed. Nothing was processed, so a
            // request whose body we never streamed may be replayed on a fresh connection.
            let replayable = !requestHasBody && requestComplete
            if cause == .closedBeforeResponse && up.wasReused && replayable {
                tried.removeLast()
                phase = .connecting
                dispatch()
                return
            }
            // Reset, timeout or garbage before any response byte: an idempotent request whose body is empty
            // moves to the next candidate (bounded by `retries`); the failed server counts the retry.
            if replayable && isIdempotent && tried.count <= settings.retries {
                up.slot.stats.retries &+= 1
                failureStatus = status
                phase = .connecting
                dispatch()
                return
            }
            failExchange(status: status)
        } else {
            // Part of the response is out: the client must see it was cut short.
            endExchange(cause: .upstreamAborted)
            abort()
        }
    }

    /// A response head from the backend. Returns false when the head is not acceptable for this request (the
    /// upstream then treats it as a bad response).
    func responseHead(_ up: UpstreamConnection, _ head: HTTPHead) -> Bool {
        guard up === upstream else { return true }
        let status = head.status
        // A 101 nobody asked for would turn the connection into an unparsed tunnel: a smuggling channel.
        if status == 101 && !isUpgradeRequest { return false }
        if status < 200 && status != 101 {
            // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only (RFC 9110 §15.2).
            if versionMinor >= 1 && !(status == 100 && sentContinue) {
                HeadWriter.writeResponse(head, keepAlive: true, clientVersionMinor: 1, chunked: false, into: &out)
                flush()
            }
            return true
        }
        responseStarted = true
        responseStatus = status
        responseNanos = worker.clock() &- requestSentAt
        if settings.recordLatency { up.slot.stats.responseLatency.record(nanos: responseNanos!) }
        up.slot.stats.responses.count(status)
        countStatus(status)
        if status >= 500 { up.backend.recordPassiveFailure() } else { up.backend.recordPassiveSuccess() }
        let noBody = method == .head || status == 204 || status == 304 || status == 101
        responseChunked = false
        if !noBody {
            switch head.framing {
            case .chunked, .closeDelimited:
                if versionMinor >= 1 { responseChunked = true } else { keepAlive = false }
            default:
                break
            }
        }
        if !requestComplete { keepAlive = false }
        HeadWriter.writeResponse(head, keepAlive: keepAlive, clientVersionMinor: versionMinor,
                                 chunked: responseChunked, into: &out)
        return true
    }

    func responseBody(_ bytes: UnsafeRawBufferPointer) {
        if responseChunked { appendChunk(bytes) } else { append(bytes) }
        responseBytes &+= UInt64(bytes.count)
        worker.counters.bytesOut &+= UInt64(bytes.count)
        applyBackpressureTowardClient()
    }

    func responseEnd(_ up: UpstreamConnection, reusable: Bool) {
        guard up === upstream else { return }
        if responseChunked { append(HeadWriter.lastChunk) }
        upstream = nil
        endInFlight()
        up.release(reusable: reusable && requestComplete)
        flush()
        responseComplete = true
        endExchange(cause: .ok)
        if requestComplete {
            finishExchange()
        } else {
            // The backend answered before the request ended; keepAlive is already off: close once written.
            phase = .closed
            closeAfterFlush()
        }
    }

    func upgraded(_ up: UpstreamConnection) {
        guard up === upstream else { return }
        phase = .tunnel
        flush()
        // Bytes the client sent after its upgrade request belong to the tunnel.
        if !pending.isEmpty {
            up.append(pending)
            pending.removeAll()
            up.flush()
        }
        startReading()
    }

    func tunnelData(_ bytes: UnsafeRawBufferPointer) {
        append(bytes)
        applyBackpressureTowardClient()
    }

    func tunnelEnded() {
        upstream = nil
        endInFlight()
        endExchange(cause: .ok)
        closeAfterFlush()
    }

    /// The upstream's write queue fell below the low-water mark: read the client again.
    func upstreamDrained() {
        if readPausedForBackpressure {
            readPausedForBackpressure = false
            if phase == .body || phase == .tunnel { drainPending() }
        }
    }

    override func didDrain() {
        if writeQueueBytes <= settings.lowWater, let up = upstream, !up.isClosing {
            up.startReading()
        }
    }

    /// This client's queue is over the high-water mark even after a write attempt: pause the upstream until
    /// `didDrain` brings it under the low-water mark.
    private func applyBackpressureTowardClient() {
        guard writeQueueBytes > settings.highWater, let up = upstream else { return }
        flush()
        if writeQueueBytes > settings.highWater { up.stopReading() }
    }

    private func applyBackpressureTowardUpstream() {
        if let up = upstream, up.writeQueueBytes > settings.highWater {
            readPausedForBackpressure = true
            stopReading()
        }
    }

    // MARK: finishing

    private func endInFlight() {
        // The upstream this pause waited on is gone: reading resumes with the next exchange.
        readPausedForBackpressure = false
        if let state = routing, backendIndex >= 0 {
            state.backends[backendIndex].perWorker[worker.id].inFlight -= 1
            worker.upstreamInFlight -= 1
        }
        backendIndex = -1
    }

    /// Request and response are both complete: go on with the next request, or close. Outside `process`
    /// (an upstream event) kept input is replayed and reading resumes; inside it, the caller's loop goes on.
    private func finishExchange() {
        routing = nil
        if !keepAlive || peerClosedWrite {
            phase = .closed
            timer.enter(.clientIdle, now: loop.now, limits: worker.timerLimits)  // a client that never reads
            closeAfterFlush()
            return
        }
        phase = .head
        setIdleDeadline()
        if !inProcess { drainPending() }
    }

    /// Answers an error the proxy generated itself, when no response byte has gone out yet.
    private func failExchange(status: Int) {
        dropUpstream()
        if responseStarted {
            abort()
            return
        }
        respondError(status: status, close: !requestComplete || !keepAlive)
    }

    /// Writes a response generated by the proxy. Without `close`, the rest of the request (if any) is read
    /// and discarded and the connection goes on; the caller may be inside `process` or an upstream event.
    private func respondError(status: Int, close: Bool) {
        guard phase != .closed else { return }
        responseStarted = true
        responseComplete = true
        responseStatus = status
        countStatus(status)
        worker.counters.proxyErrors[ProxyErrorCause(status: status).rawValue] &+= 1
        if !exchangeActive, let log = worker.accessLog {
            // Rejected before a complete head (400, 414, 431, 408...): no exchange began, but the line is due.
            log.log(nil, client: clientAddress, server: nil, entry: AccessLog.Entry(
                status: status, bytes: 0, retries: 0, connectNanos: nil, responseNanos: nil,
                totalNanos: (loop.now &- headStartMs) &* 1_000_000, cause: .proxyResponse))
        }
        endExchange(cause: .proxyResponse)
        let shouldClose = close || !keepAlive
        ErrorResponses.write(status: status, close: shouldClose, into: &out)
        if shouldClose {
            phase = .closed
            keepAlive = false
            timer.enter(.clientIdle, now: loop.now, limits: worker.timerLimits)  // a client that never reads
            closeAfterFlush()
            return
        }
        flush()
        if requestComplete {
            finishExchange()
        } else {
            phase = .body  // no upstream: the body is discarded up to its end
            if !inProcess { drainPending() }
        }
    }

    @inline(__always)
    private func countStatus(_ status: Int) {
        worker.counters.responses.count(status)
    }

    /// Once per exchange, however it ended: the request's latency, in-flight count and access-log line.
    private func endExchange(cause: TerminationCause) {
        guard exchangeActive else { return }
        exchangeActive = false
        worker.counters.inFlight -= 1
        let total = worker.clock() &- requestStart
        if settings.recordLatency { worker.counters.requestLatency.record(nanos: total) }
        if let log = worker.accessLog {
            log.log(parser.head, client: clientAddress, server: servedBy?.spec.id, entry: AccessLog.Entry(
                status: responseStatus, bytes: responseBytes, retries: max(0, tried.count - 1),
                connectNanos: connectNanos, responseNanos: responseNanos, totalNanos: total, cause: cause))
        }
        servedBy = nil
    }

    /// Graceful shutdown: idle connections close now, busy ones after their response.
    func drain() {
        keepAlive = false
        if phase == .head && parser.isBetweenMessages && pending.isEmpty {
            close()
        }
    }

    func checkDeadline(now: UInt64) {
        guard !isClosing else { return }
        switch timer.expired(now: now) {
        case .clientIdle:
            close()
        case .clientHeader:
            if parser.isBetweenMessages && pending.isEmpty { close() } else { respondError(status: 408, close: true) }
        default:
            break
        }
    }

    override func didClose() {
        phase = .closed
        endExchange(cause: .clientAborted)
        worker.clientClosed(self)
        dropUpstream()
        routing = nil
    }

    /// Ends the link to the current upstream mid-exchange and closes it: a connection in the middle of an
    /// exchange never returns to the pool.
    private func dropUpstream() {
        guard let up = upstream else { return }
        upstream = nil
        endInFlight()
        up.client = nil
        up.close()
    }
}

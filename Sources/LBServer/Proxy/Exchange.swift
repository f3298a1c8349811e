import LBHTTP

/// One request and its response as a pure state machine: it is fed what happened (a request head, the end of
/// the request body, an upstream connected or failed, a response head, the client's EOF...) and appends what
/// to do next to an action list, which the connection carrying it performs in order. It does no I/O, reads no
/// clock (times come in with the events) and knows no socket, worker or loop, so the same exchange serves
/// whatever carries the bytes (a TCP socket today; a TLS session or an HTTP/2 stream later) and a unit test
/// can run any exchange as a short script of events.
///
/// The caller owns the routing (which candidate, which pooled connection), the bytes and the stats; the
/// exchange owns every decision: when the request body may be read, when the response may keep the
/// connection, whether a failure is retried, replayed or answered, and how each exchange is logged (once).
///
/// The caller's action queue is reused (`ActionQueue`), so an event allocates nothing.
struct Exchange {
    /// How far the request has been read.
    enum Request: Equatable {
        /// A body follows the head, but no upstream has the head yet: the body stays unread in the socket.
        case held
        /// The parser may read on: body bytes (if any) go to the upstream, or are discarded once answered.
        case streaming
        /// The parser delivered the request's end.
        case complete
    }

    enum Response: Equatable {
        case awaitingHead
        /// The response head went to the client; its body is re-framed as chunked when `chunked`.
        case streaming(chunked: Bool)
    }

    /// Every state carries exactly what is valid in it; `idle` is between exchanges.
    enum State: Equatable {
        case idle
        /// A candidate was picked (or is being picked) and its connection is not ready yet.
        case connecting(Request)
        /// An upstream has the request head.
        case forwarding(Request, Response)
        /// The proxy answered itself and keeps the connection: the rest of the request body is discarded.
        case answered(Request)
        /// After `101 Switching Protocols`: bytes pass through unparsed until either side ends.
        case tunnel
        /// Over; the connection closes (after writing what is queued, or at once).
        case done
    }

    private(set) var state = State.idle
    private(set) var request = RequestFacts()
    /// The response may leave the connection open for the next request.
    private(set) var keepAlive = true
    /// Servers tried for this request, in order (indexes into the routing state's backends).
    private(set) var tried: [Int] = []
    private(set) var record = ExchangeRecord()
    /// At most `retries + 1` candidates are tried per request.
    let retries: Int
    /// What the client gets if no candidate is left: 503 when nothing was tried (or every connect was refused),
    /// else what the last attempt's failure means (502 bad or closed response, 504 timeout).
    private var failureStatus = 503
    /// The current attempt's server was picked by panic routing: it was down by health, as was every other one
    /// that could take the request.
    private var pickedInPanic = false
    /// The proxy answered `Expect: 100-continue` itself, so a backend's own 100 is not passed on twice.
    private var sentContinue = false
    /// Graceful shutdown: failures then are the shutdown's, not the server's.
    private var draining = false
    /// Times this request went back to a server that shed its connection (`afterFailure`).
    private var sheds: UInt8 = 0

    init(retries: Int) {
        self.retries = retries
        tried.reserveCapacity(retries + 1)
    }

    // MARK: reading the request

    /// True while the caller may feed request bytes: a next head when idle, else the current request's body.
    var readsRequest: Bool {
        switch state {
        case .idle, .connecting(.streaming), .forwarding(.streaming, _), .answered(.streaming): return true
        default: return false
        }
    }

    var isIdle: Bool { state == .idle }

    /// A request with a body is under way and its end has not been read: a client gone now cut its upload short.
    var isAwaitingRequestBody: Bool {
        guard request.hasBody else { return false }
        switch state {
        case .connecting(let p), .forwarding(let p, _): return p != .complete
        case .idle, .answered, .tunnel, .done: return false
        }
    }

    /// Where the current request's body bytes go.
    var bodyGoesUpstream: Bool {
        if case .forwarding = state { return true }
        return false
    }

    /// The exchange began and is not logged yet: its end (however it comes) is still to be recorded.
    private var isOpen: Bool {
        switch state {
        case .connecting, .forwarding, .tunnel: return true
        case .idle, .answered, .done: return false
        }
    }

    /// A complete request head arrived (`now`: clock nanoseconds, or 0 when nothing measures time).
    /// A new, idle exchange for a reused stream, keeping the capacity of the list of servers tried.
    mutating func reset() {
        var kept: [Int] = []
        swap(&kept, &tried)
        kept.removeAll(keepingCapacity: true)
        self = Exchange(retries: retries)
        swap(&kept, &tried)
    }

    mutating func begin(_ facts: RequestFacts, draining: Bool, now: UInt64, _ a: inout some ExchangeActionSink) {
        request = facts
        keepAlive = facts.keepAlive && !draining
        self.draining = draining
        tried.removeAll(keepingCapacity: true)
        record = ExchangeRecord(start: now)
        failureStatus = 503
        pickedInPanic = false
        sentContinue = false
        sheds = 0
        // A body-less request ends right after its head; a body waits for an upstream to stream it to.
        state = .connecting(facts.hasBody ? .held : .streaming)
        if facts.method == .connect {
            // A proxy-to-anywhere tunnel is not what a load balancer offers.
            respond(405, close: true, &a)
            return
        }
        dispatch(&a)
    }

    /// The head could not be parsed (or did not arrive in time): no exchange began, but the client gets the
    /// error and the connection closes.
    mutating func rejectHead(status: Int, _ a: inout some ExchangeActionSink) {
        guard state == .idle else { return }
        state = .done
        keepAlive = false
        a.append(.logRejectedHead(status: status))
        a.append(.respond(status: status, close: true))
        a.append(.closeClient(afterFlush: true))
    }

    mutating func requestEnd(_ a: inout some ExchangeActionSink) {
        switch state {
        case .connecting(.streaming):
            state = .connecting(.complete)
        case .forwarding(.streaming, let response):
            if request.chunked { a.append(.sendLastChunk) }
            state = .forwarding(.complete, response)
        case .answered(.streaming):
            state = .answered(.complete)
            finish(&a)
        default:
            break
        }
    }

    /// The request body broke its own framing (`status` is the parser's verdict): nothing more of it can be
    /// trusted.
    mutating func requestFailed(status: Int, _ a: inout some ExchangeActionSink) {
        fail(status, &a)
    }

    /// The client closed its sending side.
    mutating func clientEOF(_ a: inout some ExchangeActionSink) {
        switch state {
        case .connecting(.complete), .forwarding(.complete, _):
            // Half-close after a complete request: still deliver the response, then close.
            keepAlive = false
        case .tunnel:
            // The client ended the tunnel: not the backend's failure.
            state = .done
            a.append(.log(.ok))
            a.append(.closeTunnel)
        case .idle, .connecting, .forwarding, .answered, .done:
            // The request (or the next head) is cut short.
            if isOpen { a.append(.log(.clientAborted)) }
            state = .done
            keepAlive = false
            a.append(.closeClient(afterFlush: false))
        }
    }

    /// The client connection is gone (closed or reset).
    mutating func clientClosed(_ a: inout some ExchangeActionSink) {
        if isOpen { a.append(.log(.clientAborted)) }
        if state != .idle { a.append(.dropUpstream) }
        state = .done
    }

    /// Graceful shutdown: this response closes the connection.
    mutating func drain() {
        draining = true
        keepAlive = false
    }

    // MARK: routing and upstream events

    /// No candidate is eligible (the caller found none after a `.pick`).
    mutating func noCandidate(_ a: inout some ExchangeActionSink) {
        if failureStatus == 503 { a.append(.countNoServer) }
        respond(failureStatus, close: requestProgress != .complete && request.hasBody, &a)
    }

    /// The picked server is at its `max_connections` and its queue is full, or the request waited in the queue
    /// for `timeouts.queue`: 503. The server is busy, not failing: no passive-health penalty, no other server
    /// (the key keeps its server, as it would while waiting).
    mutating func serverBusy(_ a: inout some ExchangeActionSink) {
        guard case .connecting = state else { return }
        respond(503, close: requestProgress != .complete && request.hasBody, &a)
    }

    /// The caller picked `server` after a `.pick` (`panic`: by panic routing, a server down by health); a ready
    /// (pooled) or a connecting upstream follows.
    mutating func picked(server: Int, panic: Bool = false) {
        tried.append(server)
        record.server = server
        pickedInPanic = panic
    }

    /// An upstream is ready for the request head: a pooled one at once (`connectNanos` nil) or a new one
    /// connected in `connectNanos`.
    mutating func upstreamReady(connectNanos: UInt64?, now: UInt64, _ a: inout some ExchangeActionSink) {
        guard case .connecting(let progress) = state else { return }
        if let connectNanos { record.connectNanos = connectNanos }
        record.sentAt = now
        // RFC 9110 §10.1.1: the client waits for 100 before its body; say it as soon as a backend is ready,
        // so neither side waits on the other (the Expect field itself is forwarded).
        if request.expectContinue && request.versionMinor >= 1 && request.hasBody && !sentContinue {
            sentContinue = true
            a.append(.writeContinue)
        }
        a.append(.sendRequestHead)
        state = .forwarding(progress == .held ? .streaming : progress, .awaitingHead)
    }

    /// The new connection to the current candidate failed or timed out: nothing was sent, so any method may
    /// move to the next candidate. If none is left, a timeout answers 504 and a failed TLS handshake 502 (a server
    /// answered, but not as one lb can trust), else 503. A failed connect to a server picked by panic routing
    /// answers 503 however it failed: that server was already known down, so the client gets what it would get
    /// with panic routing off, "no server available" (with `Retry-After`), not a gateway error.
    mutating func connectFailed(_ failure: ConnectFailure, _ a: inout some ExchangeActionSink) {
        guard case .connecting = state, let server = tried.last else { return }
        switch failure {
        case _ where pickedInPanic: failureStatus = 503
        case .timedOut: failureStatus = 504
        case .tls: failureStatus = 502
        case .refused: break
        }
        a.append(.countRedispatch(server: server))
        a.append(.passive(server: server, success: false))
        dispatch(&a)
    }

    /// The upstream failed after the request head went out (reset, timeout, garbage, early close).
    mutating func upstreamFailed(_ cause: UpstreamFailure, wasReused: Bool, _ a: inout some ExchangeActionSink) {
        guard let server = tried.last else { return }
        switch state {
        case .connecting:
            connectFailed(cause == .timeout ? .timedOut : .refused, &a)
        case .forwarding(let progress, .awaitingHead):
            // A reused connection closed before any byte is the keep-alive race, and a shed connection a full
            // server making room (its learnt limit answers that): neither is a sick server.
            if !(cause == .closedBeforeResponse && wasReused) && cause != .shed && !draining {
                a.append(.passive(server: server, success: false))
            }
            let status = cause == .timeout ? 504 : 502
            switch Exchange.afterFailure(
                cause, wasReused: wasReused, method: request.method, hasBody: request.hasBody,
                requestComplete: progress == .complete, attempts: tried.count, retries: retries, sheds: Int(sheds))
            {
            case .replay:
                // Nothing was processed: the same request goes out again, and the race costs no attempt. A shed's
                // replay is counted as a retry of that server, and bounded.
                if cause == .shed {
                    sheds &+= 1
                    a.append(.countRetry(server: server))
                }
                tried.removeLast()
                state = .connecting(progress)
                dispatch(&a)
            case .retry:
                a.append(.countRetry(server: server))
                failureStatus = status
                state = .connecting(progress)
                dispatch(&a)
            case .fail:
                fail(status, &a)
            }
        case .forwarding(_, .streaming), .tunnel:
            if !draining { a.append(.passive(server: server, success: false)) }
            // Part of the response is out: the client must see it was cut short.
            state = .done
            keepAlive = false
            a.append(.log(.upstreamAborted))
            a.append(.abortClient)
        case .idle, .answered, .done:
            break
        }
    }

    /// A response head arrived. Returns false when it is not acceptable for this request (the upstream then
    /// fails the exchange as a bad response).
    mutating func responseHead(status: Int, framing: HTTPFraming, now: UInt64, _ a: inout some ExchangeActionSink) -> Bool {
        guard case .forwarding(let progress, .awaitingHead) = state, let server = tried.last else { return true }
        // A 101 nobody asked for would turn the connection into an unparsed tunnel: a smuggling channel.
        if status == 101 && !request.isUpgrade { return false }
        if status < 200 && status != 101 {
            // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only (RFC 9110 §15.2).
            if request.versionMinor >= 1 && !(status == 100 && sentContinue) { a.append(.writeInterim) }
            return true
        }
        record.status = status
        record.responseNanos = now &- record.sentAt
        a.append(.responseStarted(server: server))
        a.append(.passive(server: server, success: status < 500))
        let noBody = request.method == .head || status == 204 || status == 304 || status == 101
        var chunked = false
        if !noBody {
            switch framing {
            case .chunked, .closeDelimited:
                // Re-framed for HTTP/1.1 clients; an HTTP/1.0 client reads to the close.
                if request.versionMinor >= 1 { chunked = true } else { keepAlive = false }
            case .none, .contentLength:
                break
            }
        }
        // The backend answered before the request ended: the rest of the request cannot be read safely.
        if progress != .complete { keepAlive = false }
        a.append(.writeResponseHead(keepAlive: keepAlive, chunked: chunked))
        state = .forwarding(progress, .streaming(chunked: chunked))
        return true
    }

    /// `count` response body bytes arrived; returns whether they go out as a chunk.
    mutating func responseBody(count: Int) -> Bool {
        record.bytes &+= UInt64(count)
        if case .forwarding(_, .streaming(let chunked)) = state { return chunked }
        return false
    }

    /// The response is complete; `reusable` when the upstream framed it cleanly and may serve again.
    mutating func responseEnd(reusable: Bool, _ a: inout some ExchangeActionSink) {
        guard case .forwarding(let progress, let response) = state else { return }
        if response == .streaming(chunked: true) { a.append(.endChunkedResponse) }
        a.append(.releaseUpstream(reusable: reusable && progress == .complete))
        a.append(.log(.ok))
        if progress == .complete {
            finish(&a)
        } else {
            // The backend answered before the request ended; keepAlive is already off: close once written.
            state = .done
            a.append(.closeClient(afterFlush: true))
        }
    }

    /// The backend switched protocols: from now on bytes pass through both ways.
    mutating func upgraded(_ a: inout some ExchangeActionSink) {
        guard case .forwarding = state else { return }
        state = .tunnel
        a.append(.startTunnel)
    }

    /// Either side of a tunnel went quiet or away.
    mutating func tunnelEnded(_ a: inout some ExchangeActionSink) {
        guard state == .tunnel else { return }
        state = .done
        a.append(.log(.ok))
        a.append(.closeClient(afterFlush: true))
    }

    // MARK: internals

    private var requestProgress: Request {
        switch state {
        case .connecting(let p), .forwarding(let p, _), .answered(let p): return p
        case .idle, .tunnel, .done: return .complete
        }
    }

    private mutating func dispatch(_ a: inout some ExchangeActionSink) {
        if tried.count > retries {
            noCandidate(&a)
            return
        }
        a.append(.pick)
    }

    /// Answers an error the proxy generated itself when no response byte went out yet; cuts the client off
    /// otherwise.
    private mutating func fail(_ status: Int, _ a: inout some ExchangeActionSink) {
        switch state {
        case .forwarding(_, .streaming):
            a.append(.dropUpstream)
            state = .done
            keepAlive = false
            a.append(.log(.clientAborted))
            a.append(.abortClient)
        case .answered:
            state = .done
            keepAlive = false
            a.append(.abortClient)
        case .connecting, .forwarding:
            a.append(.dropUpstream)
            respond(status, close: requestProgress != .complete || !keepAlive, &a)
        case .idle, .tunnel, .done:
            break
        }
    }

    /// A response the proxy generates. Without `close`, the rest of the request (if any) is read and
    /// discarded and the connection goes on.
    private mutating func respond(_ status: Int, close: Bool, _ a: inout some ExchangeActionSink) {
        let progress = requestProgress
        record.status = status
        a.append(.log(.proxyResponse))
        let shouldClose = close || !keepAlive
        a.append(.respond(status: status, close: shouldClose))
        if shouldClose {
            state = .done
            keepAlive = false
            a.append(.closeClient(afterFlush: true))
        } else if progress == .complete {
            state = .answered(.complete)
            finish(&a)
        } else {
            state = .answered(.streaming)
        }
    }

    /// Request and response are both complete: the next request, or the close.
    private mutating func finish(_ a: inout some ExchangeActionSink) {
        state = keepAlive ? .idle : .done
        a.append(.finished(keepAlive: keepAlive))
    }
}

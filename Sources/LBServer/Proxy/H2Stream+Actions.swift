import LBCore
import LBH2
import LBHTTP

/// Carrying out the exchange's actions on an HTTP/2 stream: what each means when the client side is a stream
/// of a multiplexed connection (a "close" of the client is the end of this stream, never of the connection).
extension H2Stream {
    func perform(_ action: ExchangeAction) {
        switch action {
        case .pick:
            pick()
        case .writeContinue, .writeInterim:
            // `expect` is not forwarded (the 100 is lb's, below), and a backend's 1xx heads are dropped.
            break
        case .sendRequestHead:
            guard let up = upstream else { return }
            up.attach(to: self, method: exchange.request.method)
            up.sendHead(outgoingHead)
            resumeInput = true
            // RFC 9110 §10.1.1: a client waiting for 100 before its body hears it as soon as a backend is ready;
            // one that already sent the whole body needs none.
            if expectsContinue && !requestComplete { session.submitInformational(id, status: 100) }
            expectsContinue = false
        case .sendLastChunk:
            upstream?.send(HeadWriter.lastChunk)
        case .responseStarted(let server):
            worker.counters.responses.count(exchange.record.status)
            routing?.backends[server].slot(worker)
                .responseStarted(exchange.record, recordLatency: settings.recordLatency)
        case .writeResponseHead:
            guard let up = upstream else { return }
            submitResponseHead(up.parser.head)
        case .endChunkedResponse:
            break  // DATA frames need no last chunk: the end of the response is END_STREAM
        case .releaseUpstream(let reusable):
            detachUpstream()?.release(reusable: reusable)
        case .dropUpstream:
            leaveQueue()
            // The upstream keeps reporting to this stream until its close callback: the stream holds its slot
            // against the concurrency limit until then.
            guard let up = detachUpstream() else { return }
            aborting = up
            up.close()
        case .passive(let server, let success):
            guard let backend = routing?.backends[server] else { return }
            if success { backend.recordPassiveSuccess() } else { backend.recordPassiveFailure() }
        case .countNoServer:
            worker.counters.noServer &+= 1
        case .countRetry(let server):
            routing?.backends[server].slot(worker).stats.retries &+= 1
        case .countRedispatch(let server):
            routing?.backends[server].slot(worker).stats.redispatches &+= 1
        case .respond(let status, _):
            worker.counters.responses.count(status)
            worker.counters.proxyErrors[ProxyErrorCause(status: status).rawValue] &+= 1
            submitErrorResponse(status)
        case .log(let cause):
            endExchange(cause: cause)
        case .logRejectedHead(let status):
            guard let log = worker.accessLog else { break }
            connection.client.logAccess(log, nil, server: nil, http2: true, entry: AccessLog.Entry(
                status: status, bytes: 0, retries: 0, connectNanos: nil, responseNanos: nil,
                totalNanos: (worker.loop.now &- headStartMs) &* 1_000_000, cause: .proxyResponse))
        case .finished:
            routing = nil
        case .closeClient:
            // The stream ends with its response; a request still being sent is cut off after it.
            routing = nil
            if !requestComplete { resetAfterResponse = true }
        case .abortClient:
            session.reset(id, errorCode: H2Session.internalError)
        case .startTunnel, .closeTunnel:
            break  // no upgrades over HTTP/2 streams: the request head never asks for one
        }
    }

    /// The backend's response head as HEADERS: `:status`, then its fields minus the hop-by-hop ones, names
    /// lowercased (RFC 9113 §8.2.2).
    private func submitResponseHead(_ head: HTTPHead) {
        fields.removeAll()
        head.bytes.withUnsafeBytes { raw in
            for f in head.fields where !f.isHopByHop && f.known != .transferEncoding {
                fields.append(
                    name: UnsafeRawBufferPointer(rebasing: raw[f.name]),
                    value: UnsafeRawBufferPointer(rebasing: raw[f.value]), lowercasing: true)
            }
        }
        let status = head.status
        let body = exchange.request.method != .head && status != 204 && status != 304
        if !body { responseEnded = true }
        session.submitResponse(id, status: status, fields: fields, body: body)
    }

    /// The trailer section of the backend's chunked response, kept for the HEADERS frame after the last DATA
    /// (the upstream is released before that goes out). Names lowercased; connection-specific fields, which
    /// would make the frame malformed (RFC 9113 §8.2.2), and the framing and routing fields a trailer cannot
    /// carry (RFC 9110 §6.5.1) are left out.
    func collectTrailers(_ parser: HTTPParser) {
        trailers.removeAll()
        guard !parser.trailers.isEmpty else { return }
        parser.trailerBytes.withUnsafeBytes { raw in
            for f in parser.trailers
            where !f.isHopByHop && f.known != .contentLength && f.known != .host && f.known != .trailer {
                trailers.append(
                    name: UnsafeRawBufferPointer(rebasing: raw[f.name]),
                    value: UnsafeRawBufferPointer(rebasing: raw[f.value]), lowercasing: true)
            }
        }
    }

    /// What goes out after the body's last DATA frame: the backend's trailers, unless the stream is reset right
    /// after its response (a request still being sent is cut off, and a trailing HEADERS would not be seen).
    var responseTrailers: H2Fields? {
        trailers.count == 0 || resetAfterResponse ? nil : trailers
    }

    /// A response lb generates (ErrorResponses' status, body and extra field).
    private func submitErrorResponse(_ status: Int) {
        let code = ErrorResponses.body(status) == nil ? 500 : status
        let body = ErrorResponses.body(code)!
        fields.removeAll()
        fields.append("content-type", "text/plain")
        fields.append("content-length", decimal: body.utf8CodeUnitCount)
        if let extra = ErrorResponses.extraHeader(code) {
            extra.withUTF8Buffer { line in
                let colon = line.firstIndex(of: UInt8(ascii: ":"))!
                fields.append(
                    name: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[..<colon])),
                    value: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[(colon + 2)...])), lowercasing: true)
            }
        }
        response.removeAll(keepingCapacity: true)
        responseOffset = 0
        body.withUTF8Buffer { response.append(contentsOf: $0) }
        responseEnded = true
        session.submitResponse(id, status: code, fields: fields, body: true)
    }

    /// Sends the request to the best remaining candidate: a pooled connection if one is idle, else a new one.
    func pick() {
        if routing == nil {
            let state = worker.routing.load()
            routing = state
            outgoingHead.removeAll(keepingCapacity: true)
            connection.client.withClientAddress { addr in
                keyHash = RoutingKey.hash(parser.head, source: settings.keySource, clientAddress: addr,
                                          snapshot: state.snapshot, fellBack: &worker.counters.keyFallbacks)
                _ = HeadWriter.writeRequest(parser.head, clientAddress: addr, requestID: worker.nextRequestID(),
                                            options: settings.forwarding, secure: connection.stream.isEncrypted,
                                            owned: connection.client.tls?.ownedField, into: &outgoingHead)
            }
        }
        guard let state = routing else { return }
        guard let pick = worker.pickServer(in: state, keyHash: keyHash, tried: exchange.tried) else {
            exchange.noCandidate(&actions)
            return
        }
        exchange.picked(server: pick.index, panic: pick.panic)
        let (slot, acquired) = worker.acquireUpstream(state.backends[pick.index], for: self, waiter: self)
        take(acquired, slot: slot)
    }

    private func take(_ acquired: AcquiredUpstream, slot: WorkerBackend) {
        switch acquired {
        case .pooled(let up):
            upstreamSlot = slot
            upstream = up
            exchange.upstreamReady(connectNanos: nil, now: worker.clock(), &actions)
        case .connecting(let up):
            upstreamSlot = slot
            upstream = up
        case .unavailable:
            upstreamSlot = slot
            _ = detachUpstream()
            exchange.connectFailed(.refused, &actions)
        case .queued:
            queuedSlot = slot
        case .queueFull:
            exchange.serverBusy(&actions)
        }
    }

    // MARK: QueueWaiter

    func queueGranted() {
        queuedSlot = nil
        guard case .connecting = exchange.state, let state = routing, let server = exchange.tried.last else {
            checkDone()
            return
        }
        let (slot, acquired) = worker.acquireUpstream(state.backends[server], for: self, waiter: self, granted: true)
        take(acquired, slot: slot)
        settle()
    }

    func queueTimedOut() {
        queuedSlot = nil
        exchange.serverBusy(&actions)
        settle()
    }

    /// The exchange ended while it waited for a connection slot: its queue entry is cancelled.
    func leaveQueue() {
        guard let slot = queuedSlot else { return }
        queuedSlot = nil
        slot.cancel(self)
    }

    /// Ends the link to the current upstream (released or closed by the caller) and its in-flight count. Window
    /// held back for bytes that upstream had queued goes back to the client.
    func detachUpstream() -> UpstreamConnection? {
        if let slot = upstreamSlot { worker.endUpstreamRequest(slot) }
        upstreamSlot = nil
        if uncredited > 0 {
            session.consume(id, uncredited)
            uncredited = 0
        }
        upstreamPaused = false
        let up = upstream
        upstream = nil
        return up
    }

    /// Once per exchange, however it ended: the request's latency, in-flight count and access-log line.
    func endExchange(cause: TerminationCause) {
        worker.counters.inFlight -= 1
        if cause == .clientAborted { worker.counters.clientAborts &+= 1 }
        let record = exchange.record
        let total = worker.clock() &- record.start
        if settings.recordLatency { worker.counters.requestLatency.record(nanos: total) }
        if let log = worker.accessLog {
            let server = record.server >= 0 ? routing?.backends[record.server].spec.id : nil
            connection.client.logAccess(log, parser.head, server: server, http2: true, entry: AccessLog.Entry(
                status: record.status, bytes: record.bytes, retries: max(0, exchange.tried.count - 1),
                connectNanos: record.connectNanos, responseNanos: record.responseNanos, totalNanos: total,
                cause: cause))
        }
    }
}

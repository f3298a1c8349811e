import CLibUV
import LBCore
import LBHTTP

/// Carrying out the exchange's actions: what each means on a TCP client connection and its upstream.
extension ClientConnection {
    func perform(_ action: ExchangeAction) {
        switch action {
        case .pick:
            pick()
        case .writeContinue:
            append(ClientConnection.continueResponse)
            flush()
        case .sendRequestHead:
            guard let up = upstream else { return }
            up.attach(to: self, method: exchange.request.method)
            up.readPacedByClient()
            up.sendHead(outgoingHead)
            resumeInput = true
        case .sendLastChunk:
            upstream?.send(HeadWriter.lastChunk)
        case .writeInterim:
            guard let up = upstream else { return }
            HeadWriter.writeResponse(up.parser.head, keepAlive: true, clientVersionMinor: 1, chunked: false,
                                     into: &stream.out)
            flush()
        case .responseStarted(let server):
            worker.counters.responses.count(exchange.record.status)
            routing?.backends[server].slot(worker)
                .responseStarted(exchange.record, recordLatency: settings.recordLatency)
        case .writeResponseHead(let keepAlive, let chunked):
            guard let up = upstream else { return }
            HeadWriter.writeResponse(up.parser.head, keepAlive: keepAlive,
                                     clientVersionMinor: exchange.request.versionMinor, chunked: chunked,
                                     into: &stream.out)
        case .endChunkedResponse:
            append(HeadWriter.lastChunk)
        case .releaseUpstream(let reusable):
            detachUpstream()?.release(reusable: reusable)
            flush()
        case .dropUpstream:
            leaveQueue()
            guard let up = detachUpstream() else { return }
            up.owner = nil
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
        case .respond(let status, let close):
            worker.counters.responses.count(status)
            worker.counters.proxyErrors[ProxyErrorCause(status: status).rawValue] &+= 1
            ErrorResponses.write(status: status, close: close, into: &stream.out)
            if !close { flush() }
        case .log(let cause):
            endExchange(cause: cause)
        case .logRejectedHead(let status):
            guard let log = worker.accessLog else { break }
            logAccess(log, nil, server: nil, entry: AccessLog.Entry(
                status: status, bytes: 0, retries: 0, connectNanos: nil, responseNanos: nil,
                totalNanos: (loop.now &- headStartMs) &* 1_000_000, cause: .proxyResponse))
        case .finished(let keepAlive):
            routing = nil
            worker.noteResponseEnd(keptConnection: keepAlive && !peerClosedWrite)
            if keepAlive && !peerClosedWrite {
                timer.enter(.clientIdle, now: loop.now, limits: worker.timerLimits)
                resumeInput = true
            } else {
                closeClient(afterFlush: true)
            }
        case .closeClient(let afterFlush):
            closeClient(afterFlush: afterFlush)
        case .abortClient:
            abort()
        case .startTunnel:
            guard let up = upstream else { return }
            flush()
            // Bytes the client sent after its upgrade request belong to the tunnel.
            if !pending.isEmpty {
                pending.withUnsafeBytes { up.tunnel($0) }
                pending.removeAll()
                up.flush()
            }
            startReading()
        case .closeTunnel:
            if let up = detachUpstream() {
                up.owner = nil  // its close is the tunnel's end, not a failure to report
                up.closeAfterFlush()
            }
            closeAfterFlush()
        }
    }

    func closeClient(afterFlush: Bool) {
        // A client that never reads its last response is closed by the idle timeout.
        timer.enter(.clientIdle, now: loop.now, limits: worker.timerLimits)
        if afterFlush { closeAfterFlush() } else { close() }
    }

    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Sends the request to the best remaining candidate: a pooled connection if one is idle, else a new one.
    func pick() {
        if routing == nil {
            let state = worker.routing.load()
            routing = state
            let head = parser.head
            outgoingHead.removeAll(keepingCapacity: true)
            withClientAddress { addr in
                keyHash = RoutingKey.hash(head, source: settings.keySource, clientAddress: addr,
                                          snapshot: state.snapshot, fellBack: &worker.counters.keyFallbacks)
                _ = HeadWriter.writeRequest(head, clientAddress: addr, requestID: worker.nextRequestID(),
                                            options: settings.forwarding, secure: stream.isEncrypted,
                                            owned: tls?.ownedField, into: &outgoingHead)
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
        guard case .connecting = exchange.state, let state = routing, let server = exchange.tried.last else { return }
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

    /// Ends the link to the current upstream (it is released or closed by the caller) and its in-flight count.
    func detachUpstream() -> UpstreamConnection? {
        // The upstream a back-pressure pause waited on is gone: reading resumes with the next exchange.
        readPausedForBackpressure = false
        upstreamPausedForClient = false
        if let slot = upstreamSlot { worker.endUpstreamRequest(slot) }
        upstreamSlot = nil
        let up = upstream
        upstream = nil
        return up
    }

    // MARK: finishing

    /// One access-log line for a request of this connection (an HTTP/1.1 request, or one of its HTTP/2 streams):
    /// the client's address and the connection's TLS fields go with it.
    func logAccess(_ log: AccessLog, _ head: HTTPHead?, server: String?, http2: Bool = false, entry: AccessLog.Entry) {
        let tlsFields = accessLogTLSFields()
        withClientAddress { client in
            log.log(head, client: client, server: server, tls: tlsFields, http2: http2, entry: entry)
        }
    }

    /// The TLS version, cipher and server name for this connection's access-log lines, formatted on the first
    /// line and kept; nil on plain HTTP.
    func accessLogTLSFields() -> [UInt8]? {
        guard let tls, let log = worker.accessLog else { return nil }
        if let tlsLogFields { return tlsLogFields }
        let session = tls.session
        guard let version = session.protocolVersion, let cipher = session.cipherName else { return nil }
        let fields = log.tlsFields(version: version.description, cipher: cipher, serverName: session.serverName)
        tlsLogFields = fields
        return fields
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
            logAccess(log, parser.head, server: server, entry: AccessLog.Entry(
                status: record.status, bytes: record.bytes, retries: max(0, exchange.tried.count - 1),
                connectNanos: record.connectNanos, responseNanos: record.responseNanos, totalNanos: total,
                cause: cause))
        }
    }
}

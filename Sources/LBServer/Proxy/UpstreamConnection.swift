import CLibUV
import LBCore

/// A connection to one backend, owned by one worker. It carries one exchange at a time for its client and
/// returns to the backend's pool only after a complete, well-framed response (RFC 9112 §9.3 requires no
/// more than that; anything odd discards it).
final class UpstreamConnection: TCPConnection, ListLinked {
    enum State { case connecting, active, idle, tunnel }

    unowned(unsafe) let worker: Worker
    let backend: Backend
    unowned(unsafe) let slot: WorkerBackend
    /// The client this exchange belongs to. Cleared by whichever side ends the link first.
    unowned(unsafe) var client: ClientConnection?
    var parser: HTTPParser
    private(set) var state = State.connecting
    /// True once it has served a response: a failure before the first response byte may be the keep-alive
    /// race (the backend closed it while idle), which is safe to replay for a body-less request.
    private(set) var wasReused = false
    private(set) var receivedAny = false
    /// The timeout of the current state (connect, response head, idle in pool, tunnel), checked by the sweep.
    var timer = ConnectionTimer()
    private var connectStartedNanos: UInt64 = 0

    var listPrev: UpstreamConnection?
    var listNext: UpstreamConnection?
    var inList = false

    init(worker: Worker, backend: Backend) {
        self.worker = worker
        self.backend = backend
        slot = backend.perWorker[worker.id]
        parser = HTTPParser(kind: .response, limits: worker.settings.limits)
        super.init(loop: worker.loop)
        uv_tcp_nodelay(handle, 1)
    }

    func open() {
        worker.upstreamOpened(self)
        slot.activeConnections += 1
        slot.stats.peakConnections = max(slot.stats.peakConnections, slot.activeConnections)
        slot.stats.connectsOpened &+= 1
        connectStartedNanos = worker.clock()
        timer.enter(.upstreamConnect, now: loop.now, limits: worker.timerLimits)
        backend.address.withSockaddr { connect(to: $0) }
    }

    // MARK: exchange

    /// Binds this connection to `client` for one exchange; the request head follows.
    func attach(to client: ClientConnection, method: HTTPMethod) {
        self.client = client
        receivedAny = false
        parser.expectResponse(to: method)
        if state == .idle { state = .active }
        if state == .active { timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits) }
    }

    /// Ends the link after a complete response. Returns it to the pool when `reusable`.
    func release(reusable: Bool) {
        client = nil
        wasReused = true
        // Back-pressure may have paused reading mid-response: an idle pooled connection must read again (to
        // see the backend close it, and to get the next response).
        if reusable { startReading() }
        if reusable && !backend.isRemoved && !worker.isDraining && slot.idle.count < worker.settings.poolSize
            && writeQueueBytes == 0 && !isClosing
        {
            state = .idle
            timer.enter(.upstreamIdle, now: loop.now, limits: worker.timerLimits)
            slot.idle.append(self)
        } else {
            close()
        }
    }

    /// Tunnel mode after `101 Switching Protocols`: bytes pass through unparsed.
    func becomeTunnel() {
        state = .tunnel
        timer.enter(.tunnelIdle, now: loop.now, limits: worker.timerLimits)
    }

    func closeIfIdle() {
        if state == .idle { close() }
    }

    func checkDeadline(now: UInt64) {
        guard !isClosing else { return }
        switch timer.expired(now: now) {
        case .none, .clientIdle, .clientHeader:
            return
        case .upstreamIdle:
            close()
        case .upstreamConnect:
            failConnect(timedOut: true)
        case .upstreamResponse:
            failExchange(.timeout)
        case .tunnelIdle:
            endTunnel()
        }
    }

    // MARK: ending the link
    // Each detaches the client before closing, so `didClose` does not report the same end a second time, and
    // tells the client only after the close (it may open the next connection at once).

    /// The connect failed or timed out: nothing was sent.
    private func failConnect(timedOut: Bool) {
        slot.stats.connectErrors &+= 1
        let c = client
        client = nil
        close()
        c?.upstreamConnectFailed(self, timedOut: timedOut)
    }

    /// The backend failed the exchange (garbage, reset, silence): the connection is dropped, never pooled.
    private func failExchange(_ cause: UpstreamFailure) {
        slot.stats.responseErrors &+= 1
        let c = client
        client = nil
        close()
        c?.upstreamFailed(self, cause: cause)
    }

    /// Either side of a tunnel went quiet or away.
    private func endTunnel() {
        let c = client
        client = nil
        close()
        c?.tunnelEnded()
    }

    // MARK: TCPConnection hooks

    override func didConnectResult(_ status: Int32) {
        if status < 0 {
            failConnect(timedOut: false)
            return
        }
        state = .active
        timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
        startReading()
        let took = worker.clock() &- connectStartedNanos
        if worker.settings.recordLatency { slot.stats.connectLatency.record(nanos: took) }
        client?.upstreamConnected(self, connectNanos: took)
    }

    override func didRead(_ bytes: UnsafeRawBufferPointer) {
        slot.stats.bytesIn &+= UInt64(bytes.count)
        guard let client else {
            // Bytes on an idle pooled connection are not a response to anything: discard the connection.
            close()
            return
        }
        // Whatever this read produced for the client goes out now, in one write: a streamed response (or tunnel
        // traffic) must not wait for its end, or for the high-water mark, to reach the client.
        defer { client.flush() }
        if state == .tunnel {
            timer.tunnelActivity(now: loop.now, limits: worker.timerLimits)
            client.tunnelData(bytes)
            return
        }
        receivedAny = true
        // Until the response is complete, silence from the backend is what times out (head or body alike).
        timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
        var pos = 0
        // The client may end the link from any of these calls (e.g. its socket failed): re-check each turn.
        while self.client != nil, !isClosing {
            switch parser.next(bytes, &pos) {
            case .needMore:
                return
            case .head:
                if !client.responseHead(self, parser.head) {
                    failExchange(.badResponse)
                    return
                }
            case .body(let range):
                client.responseBody(UnsafeRawBufferPointer(rebasing: bytes[range]))
            case .end:
                if parser.isUpgraded {
                    becomeTunnel()
                    client.upgraded(self)
                    if pos < bytes.count {
                        client.tunnelData(UnsafeRawBufferPointer(rebasing: bytes[pos...]))
                    }
                    return
                }
                if parser.head.status < 200 { continue }  // an interim response; the final one follows
                // Extra bytes after a complete response can only be garbage or an attack: never reuse.
                let clean = pos == bytes.count && parser.head.keepAlive
                client.responseEnd(self, reusable: clean)
                return
            case .error:
                failExchange(.badResponse)
                return
            }
        }
    }

    override func didReadEnd(_ error: UVError) {
        guard let client else {
            close()
            return
        }
        if state == .tunnel {
            endTunnel()
            return
        }
        if error.isEOF, case .end = parser.finish() {
            // A close-delimited response ends here.
            client.responseEnd(self, reusable: false)
            close()
            return
        }
        failExchange(receivedAny ? .truncated : .closedBeforeResponse)
    }

    override func didDrain() {
        // The backend is still taking the request: its response timeout counts from the last byte it took.
        if timer.phase == .upstreamResponse {
            timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
        }
        if let client, writeQueueBytes <= worker.settings.lowWater {
            client.upstreamDrained()
        }
    }

    override func didClose() {
        worker.upstreamClosed(self)
        slot.activeConnections -= 1
        if state == .idle, let i = slot.idle.firstIndex(where: { $0 === self }) {
            slot.idle.remove(at: i)
        }
        if let c = client {
            // Closed under an exchange (write failure): the client decides what the client sees.
            client = nil
            c.upstreamFailed(self, cause: receivedAny ? .truncated : .closedBeforeResponse)
        }
    }
}

enum UpstreamFailure {
    case closedBeforeResponse
    case truncated
    case badResponse
    case timeout
}

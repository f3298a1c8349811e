import CLibUV
import LBCore
import LBHTTP
import LBTLS
import LBUV

/// A connection to one backend, owned by one worker. It carries one exchange at a time for its owner and
/// returns to the backend's pool only after a complete, well-framed response (RFC 9112 §9.3 requires no
/// more than that; anything odd discards it). It never reaches into its owner: it reports events.
///
/// The transport is a `ByteStream`: the TCP socket itself, or TLS over it when the backend is configured for
/// TLS. Either way "connected" means ready for the request head (for TLS: the handshake is done and the
/// backend's certificate verified).
final class UpstreamConnection: ByteStreamHandler, ListLinked, PoolLinked {
    enum State { case connecting, active, idle, tunnel }

    /// An end this connection decided on, reported to the owner from the close callback, so that an owner is
    /// never called back from inside one of its own calls.
    private enum EndReport { case connectFailed(ConnectFailure), failed(UpstreamFailure), tunnelEnded }

    unowned(unsafe) let worker: Worker
    let backend: Backend
    /// The socket; this connection is its handler, or the handler of `tls` over it. The stream the exchange
    /// uses is `tls` when set, else the socket: every use below picks one with a branch rather than through an
    /// existential, which keeps plain TCP on direct calls (it costs the data path retains and witness calls).
    private let socket: HandledTCPStream
    private let tls: TLSStream<TLSClientSession>?
    /// This worker's pool and counters for `backend`; the backend outlives its connections.
    unowned(unsafe) let slot: WorkerBackend
    /// The exchange this connection serves. Lifetime rule: whichever side ends the link clears it first. The
    /// owner clears it (or releases this connection, which clears it) before it closes; this connection
    /// clears it before reporting an end. A ClientConnection drops its upstream in its own close callback, so
    /// the owner is alive whenever this is set.
    unowned(unsafe) var owner: UpstreamOwner?
    var parser: HTTPParser
    private(set) var state = State.connecting
    /// True once it has served a response: a failure before the first response byte may be the keep-alive
    /// race (the backend closed it while idle), which is safe to replay for a body-less request.
    private(set) var wasReused = false
    private(set) var receivedAny = false
    private var endReport: EndReport?
    /// The timeout of the current state (connect, response head, idle in pool, tunnel), checked by the sweep.
    private var timer = ConnectionTimer()
    private var connectStartedNanos: UInt64 = 0
    /// Loop time (ms) this connection was last ready for a request: connected, or put back in the pool.
    private var readySinceMs: UInt64 = 0
    /// The TLS record buffers were given back while idle in the pool; the next exchange clears it.
    private var tlsBuffersReleased = false
    /// `pauseForClient()` disarmed the response timeout; `resumeForClient()` re-arms it.
    private var responseTimerSuspended = false

    var listPrev: UpstreamConnection?
    var listNext: UpstreamConnection?
    var inList = false
    /// Links of the backend's idle pool (`IdlePool`), apart from the worker's list above.
    var poolOlder: UpstreamConnection?
    var poolNewer: UpstreamConnection?
    var inPool = false

    /// A connection to `backend`, not yet opened. Nil when its TLS session cannot be created (OpenSSL out of
    /// memory): the caller treats that as a failed connect.
    init?(worker: Worker, backend: Backend) {
        self.worker = worker
        self.backend = backend
        slot = backend.slot(worker)
        parser = HTTPParser(kind: .response, limits: worker.settings.limits)
        socket = HandledTCPStream(loop: worker.loop)
        uv_tcp_nodelay(socket.handle, 1)
        if let settings = backend.tls {
            let session: TLSClientSession
            do {
                session = try TLSClientSession(
                    context: settings.context, serverName: settings.serverName, verifyName: settings.verifyName,
                    cache: slot.tlsSessions)
            } catch {
                socket.close()
                return nil
            }
            let tls = TLSStream(socket: socket, session: session, worker: nil)
            self.tls = tls
            tls.handler = self
        } else {
            tls = nil
            socket.handler = self
        }
    }

    func open() {
        worker.upstreamOpened(self)
        slot.connectionOpened()
        connectStartedNanos = worker.clock()
        timer.enter(.upstreamConnect, now: worker.loop.now, limits: worker.timerLimits)
        if let tls {
            backend.address.withSockaddr { tls.connect(to: $0) }
        } else {
            backend.address.withSockaddr { socket.connect(to: $0) }
        }
    }

    /// The status and framing of the response head just parsed (after a `.head` event).
    var responseHead: (status: Int, framing: HTTPFraming) {
        let head = parser.head
        return (head.status, head.framing)
    }

    // MARK: the stream, for the owner

    /// A TLS stream closes exactly when its socket does.
    var isClosing: Bool { socket.isClosing }
    var writeQueueBytes: Int { if let tls { tls.writeQueueBytes } else { socket.writeQueueBytes } }
    func flush() { if let tls { tls.flush() } else { socket.flush() } }
    func startReading() { if let tls { tls.startReading() } else { socket.startReading() } }
    func stopReading() { if let tls { tls.stopReading() } else { socket.stopReading() } }
    func close() { if let tls { tls.close() } else { socket.close() } }
    func closeAfterFlush() { if let tls { tls.closeAfterFlush() } else { socket.closeAfterFlush() } }

    @inline(__always)
    private func append(_ bytes: UnsafeRawBufferPointer) {
        if let tls { tls.out.append(contentsOf: bytes) } else { socket.out.append(contentsOf: bytes) }
    }

    /// Body and tunnel bytes: straight to the kernel when nothing is queued ahead (`TCPConnection.send`).
    @inline(__always)
    private func sendNow(_ bytes: UnsafeRawBufferPointer) {
        if let tls { tls.send(bytes) } else { socket.send(bytes) }
    }

    @inline(__always)
    private func append(_ bytes: [UInt8]) {
        if let tls { tls.out.append(contentsOf: bytes) } else { socket.out.append(contentsOf: bytes) }
    }
    private var loop: EventLoop { worker.loop }

    // MARK: exchange

    /// Binds this connection to `owner` for one exchange; the request head follows.
    func attach(to owner: UpstreamOwner, method: HTTPMethod) {
        self.owner = owner
        receivedAny = false
        responseTimerSuspended = false
        socket.readLimit = 0
        tlsBuffersReleased = false
        parser.expectResponse(to: method)
        if state == .idle { state = .active }
        if state == .active { timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits) }
    }

    func sendHead(_ head: [UInt8]) {
        slot.stats.bytesOut &+= UInt64(head.count)
        append(head)
    }

    /// Request body bytes, as a chunk when the request is chunked. Empty input sends nothing (an empty chunk
    /// would end the body).
    func sendBody(_ bytes: UnsafeRawBufferPointer, chunked: Bool) {
        if bytes.isEmpty { return }
        if chunked {
            if let tls { tls.appendChunk(bytes) } else { socket.appendChunk(bytes) }
        } else {
            sendNow(bytes)
        }
        slot.stats.bytesOut &+= UInt64(bytes.count)
        // The response timeout counts from the last request byte sent, so a long upload is not cut short.
        timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
    }

    func send(_ bytes: [UInt8]) { append(bytes) }

    /// Client bytes of an upgraded connection.
    func tunnel(_ bytes: UnsafeRawBufferPointer) {
        timer.tunnelActivity(now: loop.now, limits: worker.timerLimits)
        sendNow(bytes)
    }

    /// Ends the link after a complete response. Returns it to the pool when `reusable`.
    func release(reusable: Bool) {
        owner = nil
        wasReused = true
        // Back-pressure may have paused reading mid-response: an idle pooled connection must read again (to
        // see the backend close it, and to get the next response).
        if reusable { startReading() }
        guard reusable && !backend.isRemoved && !worker.isDraining && writeQueueBytes == 0 && !isClosing else {
            close()
            return
        }
        // The optional fixed cap; without one the pool keeps what demand brought and the purge trims it.
        guard slot.idle.count < worker.settings.poolSize else {
            slot.stats.poolFull &+= 1
            close()
            return
        }
        state = .idle
        readySinceMs = loop.now
        timer.enter(.upstreamIdle, now: loop.now, limits: worker.timerLimits)
        slot.idle.push(self)
    }

    /// The largest read while the client has not shown it keeps up (HAProxy's buffer size).
    static let slowReaderReadBytes: UInt32 = 16 * 1024

    /// An HTTP/1.1 client's exchange: the response is read in pieces of `slowReaderReadBytes` until the client
    /// takes one whole (`readWhole`), and again after a pause for it. What the kernel does not take stays in lb
    /// until the client reads it, so a slow reader costs one small read, not one of the loop's whole buffer:
    /// with thousands of slow readers of big responses that is most of lb's memory. For a client that keeps up
    /// only the first read of a response is smaller. (An HTTP/2 stream buffers its response itself and reads
    /// whole.)
    func readPacedByClient() { socket.readLimit = UpstreamConnection.slowReaderReadBytes }

    /// The client took everything sent so far: read the backend in whole buffers.
    @inline(__always)
    func readWhole() { socket.readLimit = 0 }

    /// The owner's client is not taking the response: stop reading the backend. Its silence from now on is the
    /// client's doing, not a failure of the backend, so the response timeout is suspended until
    /// `resumeForClient()` (the owner's `client_send` deadline bounds the wait instead). Other phases (a tunnel's
    /// idle timeout) keep running.
    func pauseForClient() {
        stopReading()
        socket.readLimit = UpstreamConnection.slowReaderReadBytes
        if timer.phase == .upstreamResponse {
            responseTimerSuspended = true
            timer.enter(.none, now: 0, limits: worker.timerLimits)
        }
    }

    /// The owner's client has read below the low-water mark: read the backend again, its response timeout
    /// counting from now.
    func resumeForClient() {
        if responseTimerSuspended {
            responseTimerSuspended = false
            timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
        }
        startReading()
    }

    func closeIfIdle() {
        if state == .idle { close() }
    }

    func checkDeadline(now: UInt64) {
        guard !isClosing else { return }
        if let tls, !tlsBuffersReleased,
            timer.hasLasted(ConnectionTimer.idleBeforeBufferRelease, in: .upstreamIdle, now: now, limits: worker.timerLimits)
        {
            tlsBuffersReleased = true
            tls.session.releaseBuffers()
        }
        switch timer.expired(now: now) {
        case .none, .clientIdle, .clientHeader, .clientSend:
            return
        case .upstreamIdle:
            close()
        case .upstreamConnect:
            end(.connectFailed(.timedOut))
        case .upstreamResponse:
            end(.failed(.timeout))
        case .tunnelIdle:
            end(.tunnelEnded)
        }
    }

    /// Closes and tells the owner why once the close completes. A connection is never pooled after this.
    private func end(_ report: EndReport) {
        switch report {
        case .connectFailed: slot.stats.connectErrors &+= 1
        case .failed: slot.stats.responseErrors &+= 1
        case .tunnelEnded: break
        }
        if endReport == nil { endReport = report }
        close()
    }

    // MARK: ByteStreamHandler

    func streamConnected(_ error: UVError?) {
        if let tls { countHandshake(tls) }
        if let error, error.code == UV_ECONNREFUSED.rawValue { slot.forgetLearntLimit() }
        if error != nil {
            end(.connectFailed(tls?.failure != nil ? .tls : .refused))
            return
        }
        state = .active
        readySinceMs = loop.now
        timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
        startReading()
        let took = worker.clock() &- connectStartedNanos
        if worker.settings.recordLatency { slot.stats.connectLatency.record(nanos: took) }
        _ = owner?.upstreamEvent(self, .connected(nanos: took))
    }

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        slot.stats.bytesIn &+= UInt64(bytes.count)
        guard let owner else {
            // Bytes on an idle pooled connection are not a response to anything: discard the connection.
            close()
            return
        }
        // Whatever this read produced goes out now, in one write: a streamed response (or tunnel traffic) must
        // not wait for its end, or for the high-water mark, to reach the client.
        defer { _ = owner.upstreamEvent(self, .readDone) }
        if state == .tunnel {
            timer.tunnelActivity(now: loop.now, limits: worker.timerLimits)
            _ = owner.upstreamEvent(self, .tunnelData(bytes))
            return
        }
        receivedAny = true
        // Until the response is complete, silence from the backend is what times out (head or body alike).
        timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
        var pos = 0
        // The owner may end the link from any of these events: re-check each turn.
        while self.owner != nil, !isClosing {
            switch parser.next(bytes, &pos) {
            case .needMore:
                return
            case .head:
                if !owner.upstreamEvent(self, .head) {
                    end(.failed(.badResponse))
                    return
                }
            case .body(let range):
                _ = owner.upstreamEvent(self, .body(UnsafeRawBufferPointer(rebasing: bytes[range])))
            case .end:
                if parser.isUpgraded {
                    state = .tunnel
                    timer.enter(.tunnelIdle, now: loop.now, limits: worker.timerLimits)
                    _ = owner.upstreamEvent(self, .upgraded)
                    if pos < bytes.count {
                        _ = owner.upstreamEvent(self, .tunnelData(UnsafeRawBufferPointer(rebasing: bytes[pos...])))
                    }
                    return
                }
                if parser.head.status < 200 { continue }  // an interim response; the final one follows
                // Extra bytes after a complete response can only be garbage or an attack: never reuse.
                let clean = pos == bytes.count && parser.head.keepAlive
                _ = owner.upstreamEvent(self, .end(reusable: clean))
                return
            case .error:
                end(.failed(.badResponse))
                return
            }
        }
    }

    func streamReadEnd(_ error: UVError) {
        guard let owner else {
            if state == .idle { noteBackendClose() }
            close()
            return
        }
        if state == .tunnel {
            end(.tunnelEnded)
            return
        }
        if error.isEOF, case .end = parser.finish() {
            // A close-delimited response ends here.
            _ = owner.upstreamEvent(self, .end(reusable: false))
            close()
            return
        }
        end(.failed(receivedAny ? .truncated : closedUnanswered()))
    }

    /// What a close before any response byte means for the exchange: `.shed` when `noteBackendClose` counts it
    /// on a fresh connection. A reused connection's close stays the keep-alive race (`.closedBeforeResponse`),
    /// replayed whatever the method, whether or not it also taught the limit.
    private func closedUnanswered() -> UpstreamFailure {
        noteBackendClose() && !wasReused ? .shed : .closedBeforeResponse
    }

    /// The backend closed this connection while it sat in the pool, or before answering the request sent on it.
    /// Within a second of the connection's being connected or pooled, that is not a keep-alive timeout
    /// (those are seconds long): the backend is making room for other connections (`WorkerBackend.backendShed`;
    /// nginx at `worker_connections` closes idle keep-alive connections and new ones that have not sent their
    /// request yet, longest-idle first). Returns true when the close is such a shed.
    @discardableResult
    private func noteBackendClose() -> Bool {
        guard worker.settings.learnServerLimits, loop.now &- readySinceMs < 1000,
              slot.activeConnections >= WorkerBackend.learnMinimumConnections
        else { return false }
        _ = slot.backendShed(now: loop.now)
        return true
    }

    func streamDrained() {
        // The backend is still taking the request: its response timeout counts from the last byte it took.
        if timer.phase == .upstreamResponse {
            timer.enter(.upstreamResponse, now: loop.now, limits: worker.timerLimits)
        }
        if let owner, writeQueueBytes <= worker.settings.lowWater {
            _ = owner.upstreamEvent(self, .drained)
        }
    }

    /// The socket is closed (by this side or by itself after a failed write): it no longer counts as open.
    func streamClosing() {
        worker.upstreamClosing()
        slot.connectionClosing(self)
    }

    func streamClosed() {
        worker.upstreamClosed(self)
        guard let owner else { return }
        self.owner = nil
        let event: UpstreamEvent
        switch endReport {
        case .connectFailed(let failure)?: event = .connectFailed(failure)
        case .failed(let cause)?: event = .failed(cause)
        case .tunnelEnded?: event = .tunnelEnded
        case nil:
            // Closed under an exchange (write failure): the owner decides what its client sees.
            event = .failed(receivedAny ? .truncated : closedUnanswered())
        }
        _ = owner.upstreamEvent(self, event)
    }

    /// Per-backend TLS accounting, once per connection: a handshake done (resumed or full), or refused.
    private func countHandshake(_ tls: TLSStream<TLSClientSession>) {
        if let failure = tls.failure {
            if failure.isCertificateRejected {
                slot.stats.tlsCertificateRejections &+= 1
            } else {
                slot.stats.tlsHandshakeFailures &+= 1
            }
        } else if tls.session.isHandshakeComplete {
            slot.stats.tlsHandshakes &+= 1
            if tls.session.isResumed { slot.stats.tlsResumed &+= 1 }
        }
    }
}

import LBCore
import LBH2
import LBHTTP

/// One HTTP/2 request stream carried as one `Exchange`, exactly like an HTTP/1.1 request: its own routing key,
/// candidates, retries, upstream from the HTTP/1.1 pool, timeouts, stats and access-log line. The request head
/// is the HTTP/1.1 head the stream's fields stand for (`H2RequestHead`), so routing and forwarding are the
/// HTTP/1.1 code's.
///
/// Flow control: request bytes are handed to the upstream as they arrive (or held while no upstream has the
/// head yet) and the client's window reopens (`consume`) only once the upstream's queue is under the
/// high-water mark, so lb holds at most the advertised windows per stream and per connection. Response bytes
/// wait in `response` until nghttp2 has window to send them; above the high-water mark the upstream stops
/// being read, and reading resumes as the window lets them out. A stream's back-pressure never touches another
/// stream's upstream.
///
/// Lifetime: owned by its `H2Connection` from the HEADERS that opened it until nghttp2 closed it, its exchange
/// is over and any upstream it dropped has finished closing (that upstream reports to the stream from its
/// close callback: until then the stream counts against the connection's stream limit).
final class H2Stream: UpstreamOwner, QueueWaiter {
    /// Changes only when a spare stream is reused by another connection of the worker.
    unowned(unsafe) private(set) var connection: H2Connection
    private(set) var id: Int32
    var parser: HTTPParser
    var exchange: Exchange
    var actions = ActionQueue()

    // Routing and upstream, as in ClientConnection.
    var routing: RoutingState?
    var upstream: UpstreamConnection?
    var upstreamSlot: WorkerBackend?
    /// The backend whose queue this stream's request waits in (`max_connections`), and its entry's ticket.
    var queuedSlot: WorkerBackend?
    var queueTicket: UInt64 = 0
    /// An upstream dropped mid-exchange whose close callback has not come yet.
    var aborting: UpstreamConnection?
    var keyHash: UInt64 = 0
    var outgoingHead: [UInt8] = []
    var headStartMs: UInt64 = 0

    // The request body.
    /// Bytes that arrived before an upstream could take them (bounded by the stream's window).
    var held: [UInt8] = []
    /// Bytes handed to the upstream whose window is not reopened yet (its queue was above the high-water mark).
    var uncredited = 0
    var contentLength: UInt64?
    var received: UInt64 = 0
    /// END_STREAM arrived, and the exchange was told.
    var requestComplete = false
    /// The client asked for 100 (Continue) before its body and has not had it yet.
    var expectsContinue = false
    var endDelivered = false
    var resumeInput = false

    // The response.
    var response: [UInt8] = []
    var responseOffset = 0
    var responseEnded = false
    var upstreamPaused = false
    /// The response ends before the request did: RST_STREAM(NO_ERROR) after its last DATA (RFC 9113 §8.1).
    var resetAfterResponse = false
    var fields = H2Fields()
    /// The backend's chunked trailer fields, sent as a HEADERS frame after the last DATA.
    var trailers = H2Fields()

    /// nghttp2 closed the stream (both ends done, or a reset either way).
    var protocolClosed = false

    init(connection: H2Connection, id: Int32) {
        self.connection = connection
        self.id = id
        let worker = connection.worker
        parser = HTTPParser(kind: .request, limits: worker.settings.limits)
        exchange = Exchange(retries: worker.settings.retries)
        headStartMs = worker.loop.now
    }

    deinit { actions.deallocate() }

    /// Makes a retired stream new for stream `id` of `connection`, keeping its buffers' capacity.
    func reset(connection: H2Connection, id: Int32) {
        self.connection = connection
        self.id = id
        let worker = connection.worker
        parser.reset()
        exchange.reset()
        routing = nil
        upstream = nil
        upstreamSlot = nil
        queuedSlot = nil
        queueTicket = 0
        aborting = nil
        headStartMs = worker.loop.now
        held.removeAll(keepingCapacity: true)
        uncredited = 0
        contentLength = nil
        received = 0
        requestComplete = false
        expectsContinue = false
        endDelivered = false
        resumeInput = false
        response.removeAll(keepingCapacity: true)
        responseOffset = 0
        responseEnded = false
        upstreamPaused = false
        resetAfterResponse = false
        trailers.removeAll()
        protocolClosed = false
    }

    /// Going to the worker's spare list: what it refers to is let go (a routing state pins its snapshot), and
    /// buffers a large response grew are freed rather than kept for every future stream.
    func makeSpare() {
        routing = nil
        upstreamSlot = nil
        exchange.reset()
        if response.capacity > Self.keptBufferBytes { response = [] }
        if held.capacity > Self.keptBufferBytes { held = [] }
        if outgoingHead.capacity > Self.keptBufferBytes { outgoingHead = [] }
    }

    /// What a spare stream keeps of each buffer: a typical head and a small response body.
    static let keptBufferBytes = 16 * 1024

    var worker: Worker { connection.worker }
    var session: H2Session { connection.session }
    /// Borrowed, not copied: the settings hold strings and arrays, and a copy per use would retain and release them.
    var settings: ProxySettings {
        _read { yield connection.worker.settings }
    }

    // MARK: the request, from the connection

    /// The header block is complete: the request is translated and its exchange begins, or it is refused.
    func headersComplete(endStream: Bool) {
        requestComplete = endStream
        headStartMs = worker.loop.now
        if let failure = connection.requestHead.finish(hasBody: !endStream, parser: &parser) {
            switch failure {
            case .malformed:
                session.reset(id, errorCode: H2Session.protocolError)
            case .status(let status):
                exchange.rejectHead(status: status, &actions)
                settle()
            }
            return
        }
        contentLength = connection.requestHead.contentLength
        expectsContinue = connection.requestHead.expectsContinue && !endStream
        worker.counters.requests &+= 1
        worker.counters.h2.streams &+= 1
        worker.counters.inFlight += 1
        exchange.begin(RequestFacts(parser.head), draining: worker.isDraining, now: worker.clock(), &actions)
        resumeInput = true
        settle()
    }

    func requestData(_ bytes: UnsafeRawBufferPointer) {
        received &+= UInt64(bytes.count)
        if let n = contentLength, received > n {
            // RFC 9113 §8.1.1: DATA beyond the content-length makes the request malformed.
            credit(bytes.count)
            session.reset(id, errorCode: H2Session.protocolError)
            return
        }
        if exchange.bodyGoesUpstream, let up = upstream {
            if !held.isEmpty {
                held.withUnsafeBytes { deliver($0, to: up) }
                held.removeAll(keepingCapacity: true)
            }
            deliver(bytes, to: up)
        } else if exchange.state == .connecting(.held) {
            held.append(contentsOf: bytes)
        } else {
            // Answered already (or over): the rest of the body is read and discarded.
            credit(bytes.count)
        }
    }

    func requestEnded() {
        if let n = contentLength, received != n {
            session.reset(id, errorCode: H2Session.protocolError)
            return
        }
        requestComplete = true
        resumeInput = true
        settle()
    }

    /// Whatever of the request the exchange can take now: held body bytes, then the end.
    private func feedRequest() {
        resumeInput = false
        if !held.isEmpty {
            if exchange.bodyGoesUpstream, let up = upstream {
                held.withUnsafeBytes { deliver($0, to: up) }
                held.removeAll(keepingCapacity: true)
            } else if exchange.state != .connecting(.held) {
                credit(held.count)
                held.removeAll(keepingCapacity: true)
            }
        }
        if requestComplete && !endDelivered && exchange.readsRequest && held.isEmpty {
            endDelivered = true
            exchange.requestEnd(&actions)
            perform()
        }
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer, to up: UpstreamConnection) {
        up.sendBody(bytes, chunked: exchange.request.chunked)
        if up.writeQueueBytes > settings.highWater {
            up.flush()
        }
        if up.writeQueueBytes > settings.highWater {
            uncredited += bytes.count  // reopened by `.drained`
        } else {
            credit(bytes.count)
        }
    }

    /// Reopens the client's windows by `count` bytes that moved on (or were discarded).
    private func credit(_ count: Int) {
        session.consume(id, count)
    }

    // MARK: nghttp2's side of the stream

    /// nghttp2 closed the stream: cleanly once both ends are done, or reset (by the client, by lb, or with the
    /// connection). An exchange still under way ends as the client's abort.
    func closedByProtocol(errorCode: UInt32) {
        protocolClosed = true
        // Window the stream held goes back to the connection.
        credit(held.count + uncredited)
        held.removeAll(keepingCapacity: true)
        uncredited = 0
        if exchange.state != .idle && exchange.state != .done {
            exchange.clientClosed(&actions)
            perform()
        }
        checkDone()
    }

    /// The client connection is gone: nothing is reported to this stream any more.
    func connectionClosed() {
        protocolClosed = true
        if exchange.state != .idle && exchange.state != .done {
            exchange.clientClosed(&actions)
            perform()
        }
        if let up = aborting {
            up.owner = nil
            aborting = nil
        }
    }

    /// Response bytes for nghttp2's next DATA frame: nil (deferred) while none is buffered.
    func readResponseBody(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)? {
        let available = response.count - responseOffset
        if available == 0 && !responseEnded { return nil }
        let n = min(available, buffer.count)
        if n > 0 {
            response.withUnsafeBytes { raw in
                buffer.baseAddress!.copyMemory(from: raw.baseAddress! + responseOffset, byteCount: n)
            }
            responseOffset += n
        }
        if responseOffset == response.count {
            response.removeAll(keepingCapacity: true)
            responseOffset = 0
        }
        if upstreamPaused, response.count - responseOffset <= settings.h2LowWater, let up = upstream {
            upstreamPaused = false
            up.startReading()
        }
        let end = responseEnded && response.isEmpty
        if end && resetAfterResponse { session.reset(id, errorCode: H2Session.noError) }
        return (n, end)
    }

    private func appendResponse(_ bytes: UnsafeRawBufferPointer) {
        // Sent bytes are dropped from the front once they are a large share of the buffer.
        if responseOffset > 64 * 1024 && responseOffset * 2 > response.count {
            response.removeFirst(responseOffset)
            responseOffset = 0
        }
        response.append(contentsOf: bytes)
    }

    // MARK: performing

    func perform() {
        var i = 0
        while i < actions.count {
            let action = actions[i]
            i += 1
            perform(action)
        }
        actions.removeAll()
    }

    /// After an event: perform, let the request go on if an action allowed it, write what is ready.
    func settle() {
        perform()
        if resumeInput { feedRequest() }
        upstream?.flush()
        connection.schedulePump()
        checkDone()
    }

    /// Retires the stream once nothing refers to it any more.
    func checkDone() {
        if protocolClosed && (exchange.state == .idle || exchange.state == .done) && upstream == nil && aborting == nil
            && queuedSlot == nil
        {
            connection.retire(self)
        }
    }

    // MARK: UpstreamOwner

    func upstreamEvent(_ up: UpstreamConnection, _ event: UpstreamEvent) -> Bool {
        if up === aborting {
            // Only its close report matters: the backend request is gone, the stream's slot may go too.
            switch event {
            case .failed, .connectFailed, .tunnelEnded:
                aborting = nil
                checkDone()
            default:
                break
            }
            return true
        }
        switch event {
        case .body(let bytes):
            _ = exchange.responseBody(count: bytes.count)
            appendResponse(bytes)
            worker.counters.bytesOut &+= UInt64(bytes.count)
            session.resume(id)
            if response.count - responseOffset > settings.h2HighWater {
                upstreamPaused = true
                up.stopReading()
            }
            return true
        case .tunnelData:
            return true
        case .readDone:
            connection.schedulePump()
            return true
        case .drained:
            if uncredited > 0 {
                credit(uncredited)
                uncredited = 0
                connection.schedulePump()
            }
            return true
        default:
            break
        }
        guard up === upstream else { return true }
        if case .end = event {
            responseEnded = true
            collectTrailers(up.parser)
            session.resume(id)
        }
        if event.endsLink { _ = detachUpstream() }
        let accepted = exchange.upstreamReported(
            event, head: event.isHead ? up.responseHead : nil, wasReused: up.wasReused,
            now: event.needsTime ? worker.clock() : 0, &actions)
        settle()
        return accepted
    }
}

import LBH2
import LBHTTP

/// The delegate of the session under test: what `H2Connection` and `H2Stream` do with nghttp2's reports, minus
/// sockets, timers and backends. It keeps the open streams under the advertised limit (a stream whose backend
/// request is still closing keeps its slot), translates each request head with one `H2RequestHead` per connection
/// and the stream's own (reused) parser, counts DATA against content-length, credits the windows as bytes move
/// on, answers, defers, resumes and resets streams as each one's `StreamPlan` says, and counts floods as lb does
/// (limits scaled down, so that short inputs reach the GOAWAY).
///
/// Besides the output (`OutputFrames`) and the translated heads (`RequestChecks`) it checks the delegate contract
/// of `H2SessionDelegate`: callbacks only from inside `receive` and `send`, stream ids new and ascending, nothing
/// for a closed stream, header blocks never interleaved, END_STREAM once, body reads only for answered streams;
/// and flow control: no stream and no connection is delivered more than its window plus what was consumed of it.
/// A refused stream's header fields are still reported by nghttp2 and are ignored, as `H2Connection` ignores them;
/// nothing else of it but its close may be.
final class FuzzConnection: H2SessionDelegate {
    let config: RunConfig
    private(set) var session: H2Session!
    private var streams: [Int32: FuzzStream] = [:]
    private var spare: [FuzzStream] = []
    private var requestHead = H2RequestHead()
    private var headStream: Int32 = 0
    private var lastOpened: Int32 = 0
    private var refused: Set<Int32> = []
    private var closed: Set<Int32> = []
    private var ledger: [Int32: ResponseLedger] = [:]
    private var output = OutputFrames()
    private var out: [UInt8] = []
    private var inSession = false
    private var draining = false
    private var calmed = false
    private var over = false
    private var floods = [Int](repeating: 0, count: 5)
    private static let floodLimits = [20, 20, 10, 10, 20]
    private var connectionDelivered = 0
    private var connectionConsumed = 0

    init(_ config: RunConfig) {
        self.config = config
        do {
            session = try H2Session(delegate: self, settings: config.settings)
        } catch {
            check(false, "H2Session.init: \(error.description)")
        }
    }

    // MARK: the loop turn

    /// One socket read: the bytes go to nghttp2, then what lb does at the end of the turn, then everything to
    /// send is taken. False once the connection is over.
    func turn(_ bytes: UnsafeRawBufferPointer, index: Int) -> Bool {
        inSession = true
        let failure = session.receive(bytes)
        inSession = false
        if failure != nil {
            // nghttp2 queued a GOAWAY; it goes out, nothing more is read.
            pump()
            over = true
            return false
        }
        endOfTurn(index)
        pump()
        if over { return false }
        if (!session.wantsRead && !session.wantsWrite) || (draining && streams.isEmpty && !session.wantsWrite) {
            over = true
        }
        return !over
    }

    /// The input is exhausted: the backends deliver the rest of every response and the output drains.
    func finish() {
        if !over {
            for i in 0..<3 {
                endOfTurn(100 + i)
                pump()
            }
        }
    }

    /// What happens between socket reads: backends deliver response bytes (half of what is left, the end once
    /// nothing is), upstream queues drain so held request bytes are credited, aborted backend requests finish
    /// closing and free their slots; at the second turn a seed bit starts a graceful drain.
    private func endOfTurn(_ index: Int) {
        for id in streams.keys.sorted() {
            guard let s = streams[id] else { continue }
            if s.protocolClosed {
                s.slotTurns -= 1
                if s.slotTurns <= 0 { retire(s) }
                continue
            }
            if s.held > 0 {
                credit(s, s.held)
                s.held = 0
            }
            if s.responded && s.responseHasBody && !s.responseEnded {
                let n = s.toDeliver > 4096 ? s.toDeliver / 2 : s.toDeliver
                s.toDeliver -= n
                s.available += n
                if s.toDeliver == 0 { s.responseEnded = true }
                session.resume(id)
            }
        }
        if index == 1 && config.seed & 0x80 != 0 && !draining {
            draining = true
            session.goAway(errorCode: H2Session.noError)
        }
    }

    /// Takes everything nghttp2 has to send, `sendLimit` bytes at a time, as a socket that keeps draining would.
    private func pump() {
        for _ in 0..<100_000 {
            inSession = true
            let failure = session.send(into: &out, limit: config.sendLimit)
            inSession = false
            output.take(out, ledger: ledger)
            let empty = out.isEmpty
            out.removeAll(keepingCapacity: true)
            if failure != nil { over = true }
            if failure != nil || empty { return }
        }
        check(false, "send never runs dry")
    }

    // MARK: streams

    private func credit(_ s: FuzzStream, _ count: Int) {
        guard count > 0 else { return }
        session.consume(s.id, count)
        s.consumed += count
        connectionConsumed += count
    }

    private func resetStream(_ s: FuzzStream, _ code: UInt32) {
        s.resetSubmitted = true
        session.reset(s.id, errorCode: code)
    }

    private func retire(_ s: FuzzStream) {
        streams.removeValue(forKey: s.id)
        spare.append(s)
    }

    /// An answer lb makes itself: a short text body it has whole.
    private func answer(_ s: FuzzStream, status: Int) {
        var fields = H2Fields()
        fields.append("content-type", "text/plain")
        fields.append("content-length", decimal: 24)
        s.responded = true
        s.responseHasBody = true
        s.available = 24
        s.responseEnded = true
        if !s.requestEnded { s.resetAfterResponse = true }
        ledger[s.id] = ResponseLedger(submitted: true, hasBody: true)
        session.submitResponse(s.id, status: status, fields: fields, body: true)
    }

    /// The backend's answer: the request's own fields stand in for the response's (they went through the same
    /// parser), hop-by-hop ones dropped and names lowercased as `H2Stream` does with a backend's head.
    private func respondProxied(_ s: FuzzStream) {
        var fields = H2Fields()
        let head = s.parser.head
        head.bytes.withUnsafeBytes { raw in
            for f in head.fields where !f.isHopByHop && f.known != .transferEncoding {
                fields.append(
                    name: UnsafeRawBufferPointer(rebasing: raw[f.name]),
                    value: UnsafeRawBufferPointer(rebasing: raw[f.value]), lowercasing: true)
            }
        }
        let status = s.plan.status
        let body = head.method != .head && status != 204 && status != 304
        s.responded = true
        s.responseHasBody = body
        s.responseEnded = !body
        s.toDeliver = body ? s.plan.bodySize : 0
        if s.plan.answer == .proxiedEarly && !s.requestEnded { s.resetAfterResponse = true }
        ledger[s.id] = ResponseLedger(submitted: true, hasBody: body)
        session.submitResponse(s.id, status: status, fields: fields, body: body)
    }

    private func countFlood(_ kind: Int) {
        floods[kind] += 1
        guard floods[kind] > Self.floodLimits[kind], !calmed else { return }
        calmed = true
        session.terminate(errorCode: H2Session.enhanceYourCalm)
    }

    // MARK: H2SessionDelegate

    func h2StreamOpened(_ id: Int32) -> Bool {
        check(inSession, "a callback outside receive and send")
        check(id > lastOpened && id & 1 == 1, "stream \(id) opened after \(lastOpened)")
        lastOpened = id
        if streams.count >= config.settings.maxConcurrentStreams || draining {
            refused.insert(id)
            countFlood(4)
            return false
        }
        let s: FuzzStream
        if let reused = spare.popLast() {
            reused.reset(id: id, seed: config.seed)
            s = reused
        } else {
            s = FuzzStream(id: id, seed: config.seed, limits: config.limits)
        }
        streams[id] = s
        check(streams.count <= config.settings.maxConcurrentStreams, "\(streams.count) streams open")
        requestHead.reset()
        headStream = id
        return true
    }

    func h2Header(_ id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        check(inSession, "a callback outside receive and send")
        check(!closed.contains(id), "a header for closed stream \(id)")
        // nghttp2 still decodes a refused stream's header block and reports its fields: ignored, as lb does.
        if refused.contains(id) { return check(headStream == 0, "a refused stream inside a header block") }
        check(id == headStream, "a header for \(id) inside the header block of \(headStream)")
        requestHead.add(name: name, value: value)
    }

    func h2HeadersComplete(_ id: Int32, endStream: Bool) {
        check(inSession, "a callback outside receive and send")
        check(!refused.contains(id) && !closed.contains(id), "headers complete for refused or closed stream \(id)")
        check(id == headStream, "headers complete for \(id) inside the header block of \(headStream)")
        guard let s = streams[id] else { return check(false, "headers complete for unknown stream \(id)") }
        check(!s.headersDone, "headers complete twice on \(id)")
        headStream = 0
        s.headersDone = true
        s.requestEnded = endStream
        if let failure = requestHead.finish(hasBody: !endStream, parser: &s.parser) {
            s.rejected = true
            switch failure {
            case .malformed: resetStream(s, H2Session.protocolError)
            case .status(let status): answer(s, status: status)
            }
            return
        }
        s.contentLength = requestHead.contentLength
        RequestChecks.validate(
            s.parser.head, contentLength: s.contentLength, hasBody: !endStream, limits: config.limits)
        switch s.plan.answer {
        case .atHead: answer(s, status: 503)
        case .abort: resetStream(s, H2Session.internalError)
        case .proxiedEarly: respondProxied(s)
        case .proxied: if endStream { respondProxied(s) }
        case .silent: break
        }
    }

    func h2Data(_ id: Int32, _ bytes: UnsafeRawBufferPointer) {
        check(inSession, "a callback outside receive and send")
        check(!refused.contains(id) && !closed.contains(id), "DATA for refused or closed stream \(id)")
        let n = bytes.count
        connectionDelivered += n
        check(connectionDelivered <= config.connectionAllowance + connectionConsumed,
              "\(connectionDelivered) bytes delivered on the connection, \(connectionConsumed) consumed")
        guard let s = streams[id] else { return check(false, "DATA for unknown stream \(id)") }
        check(s.headersDone && !s.requestEnded, "DATA on \(id) before its head or after its end")
        s.delivered += n
        check(s.delivered <= config.streamAllowance + s.consumed,
              "\(s.delivered) bytes delivered on \(id), \(s.consumed) consumed")
        s.received &+= UInt64(n)
        if let cl = s.contentLength, s.received > cl {
            // RFC 9113 §8.1.1: DATA beyond the content-length makes the request malformed.
            credit(s, n)
            resetStream(s, H2Session.protocolError)
        } else if s.rejected || s.resetSubmitted || s.plan.answer == .abort || !s.plan.creditLater {
            credit(s, n)
        } else {
            s.held += n
        }
        let held = streams.values.reduce(0) { $0 + $1.held }
        check(held <= config.connectionAllowance, "\(held) request bytes held")
    }

    func h2RequestEnded(_ id: Int32) {
        check(inSession, "a callback outside receive and send")
        check(!refused.contains(id) && !closed.contains(id), "request end for refused or closed stream \(id)")
        guard let s = streams[id] else { return check(false, "request end for unknown stream \(id)") }
        check(s.headersDone && !s.requestEnded, "request end on \(id) before its head or twice")
        if let cl = s.contentLength, s.received != cl {
            resetStream(s, H2Session.protocolError)
            return
        }
        s.requestEnded = true
        if s.plan.answer == .proxied && !s.rejected && !s.responded && !s.resetSubmitted { respondProxied(s) }
    }

    func h2StreamClosed(_ id: Int32, errorCode: UInt32) {
        check(inSession, "a callback outside receive and send")
        check(!closed.contains(id), "stream \(id) closed twice")
        closed.insert(id)
        if headStream == id { headStream = 0 }
        guard let s = streams[id] else { return }
        s.protocolClosed = true
        credit(s, s.held)
        s.held = 0
        if s.plan.holdSlot && s.headersDone && !s.rejected {
            s.slotTurns = 1
        } else {
            retire(s)
        }
    }

    func h2FrameReceived(type: UInt8, streamID: Int32, length: Int, flags: UInt8) {
        check(inSession, "a callback outside receive and send")
        switch type {
        case H2Session.frameRSTStream: countFlood(0)
        case H2Session.framePing where flags & H2Session.flagAck == 0: countFlood(2)
        case H2Session.frameSettings where flags & H2Session.flagAck == 0: countFlood(3)
        case H2Session.frameData where length == 0 && flags & H2Session.flagEndStream == 0: countFlood(1)
        case H2Session.framePriority: countFlood(1)
        default: break
        }
    }

    func h2ControlSent(type: UInt8, streamID: Int32, errorCode: UInt32) {
        check(inSession, "a callback outside receive and send")
        check(type == H2Session.frameRSTStream || type == H2Session.frameGoaway, "control frame type \(type)")
    }

    /// No trailers: the frame checks below expect a response to end with its last DATA.
    func h2ResponseTrailers(_ id: Int32) -> H2Fields? {
        check(inSession, "a callback outside receive and send")
        return nil
    }

    func h2ReadBody(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)? {
        check(inSession, "a callback outside receive and send")
        guard let s = streams[id] else {
            check(false, "body read for stream \(id), which lb no longer has")
            return (0, true)
        }
        check(s.responded && s.responseHasBody && !s.protocolClosed, "body read for \(id), answered without a body")
        check(!(ledger[id]?.endProvided ?? true), "body read for \(id) after its end")
        if s.available == 0 && !s.responseEnded { return nil }
        let n = min(s.available, buffer.count)
        if n > 0 { buffer.baseAddress!.initializeMemory(as: UInt8.self, repeating: FuzzStream.pattern(id), count: n) }
        s.available -= n
        let end = s.responseEnded && s.available == 0
        ledger[id]!.provided += n
        ledger[id]!.endProvided = end
        if end && s.resetAfterResponse { session.reset(id, errorCode: H2Session.noError) }
        return (n, end)
    }
}

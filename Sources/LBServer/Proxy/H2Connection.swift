import LBH2
import LBHTTP
import LBUV

/// One client connection speaking HTTP/2: the shell that carries an nghttp2 session (`H2Session`) over the
/// client's byte stream and maps each request stream onto its own `H2Stream`, an exchange with its own
/// routing, upstream, retries, timeouts and access-log line. Streams of one connection go to different backends
/// at once; a stream never waits for another.
///
/// The `ClientConnection` that accepted the socket stays the stream's handler and forwards every event here
/// once it saw the client speak HTTP/2 (ALPN `h2`, or the h2c preface); it owns this object.
///
/// Re-entrancy: nghttp2 calls back only from inside `receive` and `send`, and neither may be called from a
/// callback; `pump()` is a no-op while the session runs (`inSession`). Stream events and client reads do not
/// pump themselves: they schedule one pump for the end of the loop turn (`schedulePump`), so a turn's frames
/// leave together.
/// Streams that end are kept in `retired` until the next event from the socket, so a stream whose method is on
/// the stack (reached through an upstream's unowned link) is never freed under it; from there they go to the
/// worker's spare list, and new streams of every connection reuse them.
final class H2Connection: H2SessionDelegate {
    unowned(unsafe) let worker: Worker
    unowned(unsafe) let client: ClientConnection
    let stream: any ByteStream
    private(set) var session: H2Session!
    /// Open streams, and streams whose exchange or aborted backend request is not over yet: what counts
    /// against `max_concurrent_streams` (a reset stream keeps its slot until its backend request is freed).
    private var streams: [Int32: H2Stream] = [:]
    /// Ended streams, freed (or reused) at the next event from the socket.
    private var retired: [H2Stream] = []
    /// The request head being decoded: header blocks never interleave (RFC 9113 §4.3), so one per connection.
    var requestHead = H2RequestHead()
    private var headStream: Int32 = 0
    private var floods = H2FloodGuard()
    private var timer = ConnectionTimer()
    private var inSession = false
    /// A pump is due at the end of this loop turn (`Worker.scheduleWrite`).
    private var pumpScheduled = false
    /// The buffers were given back in the current stretch without streams; a new stream clears it.
    private var idleBuffersReleased = false
    /// What one `pump` serialised, moved to the stream's queue after `send` returns.
    private var frames: [UInt8] = []
    private var draining = false
    /// The GOAWAY being sent is for this reason (counted when it goes out); nil: nghttp2's own.
    private var goawayReason: H2GoawayReason?
    private var closed = false
    /// ENHANCE_YOUR_CALM was sent: the connection ends once it is out.
    private var calmed = false
    let maxStreams: Int

    init?(client: ClientConnection, stream: any ByteStream) {
        self.worker = client.worker
        self.client = client
        self.stream = stream
        maxStreams = worker.settings.h2.maxConcurrentStreams
        do {
            session = try H2Session(delegate: self, settings: worker.settings.h2)
        } catch {
            return nil
        }
        worker.counters.h2.connections &+= 1
        worker.counters.h2.open += 1
        timer.enter(.clientIdle, now: worker.loop.now, limits: worker.timerLimits)
    }

    /// Borrowed, not copied, as in `ClientConnection`.
    var settings: ProxySettings {
        _read { yield worker.settings }
    }

    // MARK: the socket's events (through ClientConnection)

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        worker.counters.bytesIn &+= UInt64(bytes.count)
        recycleRetired()
        if closed { return }
        inSession = true
        let failure = session.receive(bytes)
        inSession = false
        if let failure {
            // Nothing more is read. nghttp2 queues a GOAWAY for most connection errors (counted when it goes
            // out), but not when it refuses the bytes outright, as it does a CONTINUATION flood: then lb sends
            // one itself, so the client learns why (RFC 9113 §5.4.1).
            if !session.wantsWrite {
                goawayReason = failure.isContinuationFlood ? .continuationFlood : .protocolError
                session.terminate(
                    errorCode: failure.isContinuationFlood ? H2Session.enhanceYourCalm : H2Session.protocolError)
            }
            pump()
            stream.closeAfterFlush()
        } else {
            // SETTINGS and PING acknowledgements, window updates and answers this read produced go out with
            // whatever the backends' responses add in the same turn.
            schedulePump()
        }
    }

    func streamReadEnd(_ error: UVError) {
        // No more frames can come (not even WINDOW_UPDATE): what is in flight is cut off with the connection.
        close()
    }

    func streamDrained() {
        if stream.writeQueueBytes <= settings.h2LowWater { pump() }
    }

    /// The socket is closed: every stream's exchange ends as the client's abort, and upstreams whose close is
    /// still pending no longer report to streams that go away with this connection.
    func streamClosed() {
        closed = true
        worker.counters.h2.open -= 1
        let all = streams
        streams.removeAll()
        for (_, s) in all { s.connectionClosed() }
        recycleRetired()
    }

    // MARK: output

    /// Moves what nghttp2 has to send into the socket's queue, up to the high-water mark (the rest waits
    /// for `streamDrained`), and closes once neither side has anything left to say.
    ///
    /// Frames are serialised into `frames`, not into the stream's queue: callbacks run during `send` may touch
    /// the stream, so the queue is not held across the call.
    func pump() {
        if inSession || closed || stream.isClosing { return }
        // A send that stopped at the limit leaves frames in nghttp2. When the flush hands everything to the
        // kernel at once no write completes later, so no drained event would come for them: the loop goes on
        // while the queue has room and the last send filled its share.
        while stream.writeQueueBytes < settings.h2HighWater {
            let limit = settings.h2HighWater - stream.writeQueueBytes
            inSession = true
            let failure = session.send(into: &frames, limit: limit)
            inSession = false
            let filled = frames.count >= limit
            stream.out.append(contentsOf: frames)
            frames.removeAll(keepingCapacity: frames.capacity <= 64 * 1024)
            stream.flush()
            if failure != nil {
                stream.close()
                return
            }
            if !filled || stream.isClosing { break }
        }
        if stream.isClosing { return }
        if (!session.wantsRead && !session.wantsWrite) || (draining && streams.isEmpty && !session.wantsWrite) {
            stream.closeAfterFlush()
        }
    }

    /// Pumps at the end of this loop turn, once however many stream events ask for it: the frames of every
    /// response read in one turn leave in one TLS record and one write.
    func schedulePump() {
        if pumpScheduled || closed { return }
        pumpScheduled = true
        worker.scheduleWrite(self)
    }

    /// The end of the turn: `Worker` runs the pumps it was asked for.
    func writeScheduled() {
        pumpScheduled = false
        pump()
    }

    func close() {
        if !stream.isClosing { stream.close() }
    }

    // MARK: shutdown and timers

    /// Graceful shutdown: GOAWAY with the last stream lb processed; those streams finish, then the connection
    /// closes.
    func drain() {
        guard !draining, !closed else { return }
        draining = true
        goAway(.drain, errorCode: H2Session.noError)
    }

    private func goAway(_ reason: H2GoawayReason, errorCode: UInt32, terminate: Bool = false) {
        goawayReason = reason
        if terminate { session.terminate(errorCode: errorCode) } else { session.goAway(errorCode: errorCode) }
        pump()
    }

    func checkDeadline(now: UInt64) {
        recycleRetired()
        guard !closed, !stream.isClosing else { return }
        // No stream for a second: the frame buffer and the socket's buffers (OpenSSL's included) go back, as
        // for an idle HTTP/1.1 client.
        if !idleBuffersReleased, streams.isEmpty, !inSession, stream.writeQueueBytes == 0, !session.wantsWrite,
            timer.hasLasted(ConnectionTimer.idleBeforeBufferRelease, in: .clientIdle, now: now, limits: worker.timerLimits)
        {
            idleBuffersReleased = true
            let released = frames.capacity + stream.releaseIdleBuffers() + session.releaseIdlePages()
            frames = []
            worker.noteIdleRelease(bytes: released)
        }
        switch timer.expired(now: now) {
        case .clientIdle:
            worker.counters.idleTimeouts &+= 1
            goAway(.idleTimeout, errorCode: H2Session.noError, terminate: true)
            stream.closeAfterFlush()
        case .clientHeader:
            worker.counters.headerTimeouts &+= 1
            goAway(.headerTimeout, errorCode: H2Session.noError, terminate: true)
            stream.closeAfterFlush()
        default:
            break
        }
    }

    // MARK: streams

    /// `s` is over (its exchange logged, nghttp2 done with it, no backend request left to free).
    func retire(_ s: H2Stream) {
        guard streams.removeValue(forKey: s.id) != nil else { return }
        retired.append(s)
        if streams.isEmpty {
            timer.enter(.clientIdle, now: worker.loop.now, limits: worker.timerLimits)
            if draining { schedulePump() }  // closes once the GOAWAY and the last frames are out
        }
    }

    private func newStream(_ id: Int32) -> H2Stream {
        if let reused = retired.popLast() ?? worker.takeSpareH2Stream() {
            reused.reset(connection: self, id: id)
            return reused
        }
        return H2Stream(connection: self, id: id)
    }

    /// Retired streams are no longer on any stack (this runs at the top of a socket or timer event): they go
    /// to the worker's spare list, so the next stream of any connection reuses one with its buffers.
    private func recycleRetired() {
        if retired.isEmpty { return }
        for s in retired { worker.keepSpare(s) }
        retired.removeAll(keepingCapacity: true)
    }

    /// Counts one frame of a flood kind; over the limit, the connection is told to calm down and closed.
    private func countFlood(_ kind: H2FloodGuard.Kind) {
        guard floods.count(kind, now: worker.loop.now), !calmed else { return }
        calmed = true
        goawayReason = kind.goawayReason
        session.terminate(errorCode: H2Session.enhanceYourCalm)
    }

    // MARK: H2SessionDelegate

    func h2StreamOpened(_ id: Int32) -> Bool {
        // A reset stream holds its slot until its backend request is really gone (Rapid Reset): nghttp2's own
        // count forgets it at the reset.
        if streams.count >= maxStreams || draining {
            worker.counters.h2.refusedStreams &+= 1
            countFlood(.refusedStream)
            return false
        }
        let s = newStream(id)
        streams[id] = s
        idleBuffersReleased = false
        requestHead.reset()
        headStream = id
        if streams.count == 1 { timer.enter(.clientHeader, now: worker.loop.now, limits: worker.timerLimits) }
        return true
    }

    func h2Header(_ id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if id == headStream { requestHead.add(name: name, value: value) }
    }

    func h2HeadersComplete(_ id: Int32, endStream: Bool) {
        guard id == headStream, let s = streams[id] else { return }
        headStream = 0
        timer.enter(.none, now: 0, limits: worker.timerLimits)
        s.headersComplete(endStream: endStream)
    }

    func h2Data(_ id: Int32, _ bytes: UnsafeRawBufferPointer) {
        if let s = streams[id] {
            s.requestData(bytes)
        } else {
            session.consume(id, bytes.count)
        }
    }

    func h2RequestEnded(_ id: Int32) {
        streams[id]?.requestEnded()
    }

    func h2StreamClosed(_ id: Int32, errorCode: UInt32) {
        streams[id]?.closedByProtocol(errorCode: errorCode)
    }

    func h2FrameReceived(type: UInt8, streamID: Int32, length: Int, flags: UInt8) {
        switch type {
        case H2Session.frameRSTStream:
            worker.counters.h2.resetsReceived &+= 1
            countFlood(.reset)
        case H2Session.framePing where flags & H2Session.flagAck == 0:
            countFlood(.ping)
        case H2Session.frameSettings where flags & H2Session.flagAck == 0:
            countFlood(.settings)
        case H2Session.frameData where length == 0 && flags & H2Session.flagEndStream == 0:
            countFlood(.emptyFrame)
        case H2Session.framePriority:
            countFlood(.emptyFrame)
        case H2Session.frameGoaway:
            worker.counters.h2.goawaysReceived &+= 1
        default:
            break
        }
    }

    func h2ControlSent(type: UInt8, streamID: Int32, errorCode: UInt32) {
        if type == H2Session.frameGoaway {
            let reason = goawayReason
                ?? (errorCode == H2Session.enhanceYourCalm ? .libraryLimit : .protocolError)
            worker.counters.h2.goaways[reason.rawValue] &+= 1
            if goawayReason != .drain { goawayReason = nil }
        } else {
            worker.counters.h2.resetsSent[H2ResetReason(errorCode: errorCode).rawValue] &+= 1
        }
    }

    func h2ReadBody(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)? {
        guard let s = streams[id] else { return (0, true) }
        return s.readResponseBody(into: buffer)
    }

    func h2ResponseTrailers(_ id: Int32) -> H2Fields? {
        streams[id]?.responseTrailers
    }
}

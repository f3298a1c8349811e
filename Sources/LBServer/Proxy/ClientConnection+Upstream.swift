import LBUV

/// What an upstream reports, carried to the exchange; and back-pressure between the two sides, which is the
/// transport's business, not the exchange's.
extension ClientConnection {
    // MARK: events from the upstream side

    func upstreamEvent(_ up: UpstreamConnection, _ event: UpstreamEvent) -> Bool {
        switch event {
        case .body(let bytes):
            let chunked = exchange.responseBody(count: bytes.count)
            if chunked { stream.appendChunk(bytes) } else { stream.send(bytes) }
            worker.counters.bytesOut &+= UInt64(bytes.count)
            applyBackpressureTowardClient()
            return true
        case .tunnelData(let bytes):
            stream.send(bytes)
            applyBackpressureTowardClient()
            return true
        case .readDone:
            flush()
            return true
        case .drained:
            // The upstream's write queue fell below the low-water mark: read the client again.
            if readPausedForBackpressure {
                readPausedForBackpressure = false
                if exchange.readsRequest || exchange.state == .tunnel { drainPending() }
            }
            return true
        default:
            break
        }
        guard up === upstream else { return true }
        if event.endsLink { _ = detachUpstream() }
        let accepted = exchange.upstreamReported(
            event, head: event.isHead ? up.responseHead : nil, wasReused: up.wasReused,
            now: event.needsTime ? worker.clock() : 0, &actions)
        settle()
        return accepted
    }

    func streamDrained() {
        if let h2 {
            h2.streamDrained()
            return
        }
        guard upstreamPausedForClient else { return }
        if writeQueueBytes <= settings.lowWater {
            upstreamPausedForClient = false
            if timer.phase == .clientSend { timer.enter(.none, now: 0, limits: worker.timerLimits) }
            if let up = upstream, !up.isClosing { up.resumeForClient() }
        } else if timer.phase == .clientSend {
            // The client took a whole write: it reads, slowly. Its deadline counts from this progress.
            timer.enter(.clientSend, now: loop.now, limits: worker.timerLimits)
        }
    }

    /// This client's queue is over the high-water mark (0: the kernel did not take everything) even after a write
    /// attempt: pause the upstream until `streamDrained` brings it under the low-water mark, so a client that reads
    /// slowly or not at all holds at most one read of its response, never the whole of it; a client that took
    /// everything has the backend read in whole buffers again (`readWhole`). Back-pressure is the
    /// transport's business, so it lives here, not in the exchange.
    ///
    /// While paused, the backend's silence is this client's doing: the upstream's response timeout is suspended
    /// and the client's `client_send` deadline runs instead (a tunnel keeps its own idle timeout).
    func applyBackpressureTowardClient() {
        guard !upstreamPausedForClient, let up = upstream else { return }
        if writeQueueBytes > settings.highWater { flush() }
        guard writeQueueBytes > settings.highWater else {
            up.readWhole()
            return
        }
        upstreamPausedForClient = true
        worker.counters.slowReaderPauses &+= 1
        up.pauseForClient()
        if exchange.state != .tunnel { timer.enter(.clientSend, now: loop.now, limits: worker.timerLimits) }
    }

    func applyBackpressureTowardUpstream() {
        if let up = upstream, up.writeQueueBytes > settings.highWater {
            readPausedForBackpressure = true
            stopReading()
        }
    }
}

import LBUV

/// What an upstream reports, carried to the exchange; and back-pressure between the two sides, which is the
/// transport's business, not the exchange's.
extension ClientConnection {
    // MARK: events from the upstream side

    func upstreamEvent(_ up: UpstreamConnection, _ event: UpstreamEvent) -> Bool {
        switch event {
        case .body(let bytes):
            let chunked = exchange.responseBody(count: bytes.count)
            if chunked { stream.appendChunk(bytes) } else { append(bytes) }
            worker.counters.bytesOut &+= UInt64(bytes.count)
            applyBackpressureTowardClient()
            return true
        case .tunnelData(let bytes):
            append(bytes)
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
        if writeQueueBytes <= settings.lowWater, let up = upstream, !up.isClosing {
            up.startReading()
        }
    }

    /// This client's queue is over the high-water mark even after a write attempt: pause the upstream until
    /// `streamDrained` brings it under the low-water mark. Back-pressure is the transport's business, so it
    /// lives here, not in the exchange.
    func applyBackpressureTowardClient() {
        guard writeQueueBytes > settings.highWater, let up = upstream else { return }
        flush()
        if writeQueueBytes > settings.highWater { up.stopReading() }
    }

    func applyBackpressureTowardUpstream() {
        if let up = upstream, up.writeQueueBytes > settings.highWater {
            readPausedForBackpressure = true
            stopReading()
        }
    }
}

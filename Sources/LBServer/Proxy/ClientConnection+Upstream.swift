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
        var accepted = true
        switch event {
        case .connected(let nanos):
            exchange.upstreamReady(connectNanos: nanos, now: worker.clock(), &actions)
        case .head:
            let head = up.parser.head
            accepted = exchange.responseHead(status: head.status, framing: head.framing, now: worker.clock(), &actions)
        case .end(let reusable):
            exchange.responseEnd(reusable: reusable, &actions)
        case .upgraded:
            exchange.upgraded(&actions)
        case .connectFailed(let failure):
            _ = detachUpstream()
            exchange.connectFailed(failure, &actions)
        case .failed(let cause):
            _ = detachUpstream()
            exchange.upstreamFailed(cause, wasReused: up.wasReused, &actions)
        case .tunnelEnded:
            _ = detachUpstream()
            exchange.tunnelEnded(&actions)
        case .body, .tunnelData, .readDone, .drained:
            break
        }
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

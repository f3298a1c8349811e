import LBHTTP

extension UpstreamEvent {
    /// The upstream is gone with this event: its owner drops the link (and its in-flight count) before the
    /// exchange hears it, since the exchange may pick another upstream at once.
    var endsLink: Bool {
        switch self {
        case .connectFailed, .failed, .tunnelEnded: true
        default: false
        }
    }

    var isHead: Bool {
        if case .head = self { return true }
        return false
    }

    /// The exchange reads the time for this event (connect and response latency): other events skip the clock.
    var needsTime: Bool {
        switch self {
        case .connected, .head: true
        default: false
        }
    }
}

extension Exchange {
    /// What an event of the exchange's own upstream means to the exchange, whichever shell carries it (an
    /// HTTP/1.1 connection or an HTTP/2 stream). `head` is the upstream parser's status and framing, given for
    /// `.head` only (reading them copies the parsed head); `wasReused` whether the upstream had served before; `now` matters when `needsTime`. Returns false when the exchange refused
    /// a response head (the upstream then fails it). Transport events (`.body`, `.tunnelData`, `.readDone`,
    /// `.drained`) are the shell's and change nothing here.
    mutating func upstreamReported(
        _ event: UpstreamEvent, head: (status: Int, framing: HTTPFraming)?, wasReused: Bool, now: UInt64,
        _ a: inout some ExchangeActionSink
    ) -> Bool {
        switch event {
        case .connected(let nanos):
            upstreamReady(connectNanos: nanos, now: now, &a)
        case .head:
            guard let head else { return true }
            return responseHead(status: head.status, framing: head.framing, now: now, &a)
        case .end(let reusable):
            responseEnd(reusable: reusable, &a)
        case .upgraded:
            upgraded(&a)
        case .connectFailed(let failure):
            connectFailed(failure, &a)
        case .failed(let cause):
            upstreamFailed(cause, wasReused: wasReused, &a)
        case .tunnelEnded:
            tunnelEnded(&a)
        case .body, .tunnelData, .readDone, .drained:
            break
        }
        return true
    }
}

import LBHTTP

/// What one feed produced, in a form that does not depend on how the input was split.
struct Outcome: Equatable, CustomStringConvertible {
    enum Event: Equatable {
        case head(HeadSnapshot)
        case body([UInt8])
        case end
        case error(HTTPParseError)
    }
    var events: [Event] = []
    /// Bytes after a 101 / CONNECT 2xx: not HTTP, left to the tunnel.
    var tunnel: [UInt8] = []

    mutating func add(_ e: Event) {
        if case .body(let b) = e, case .body(var prev)? = events.last {
            events.removeLast()
            prev += b
            events.append(.body(prev))
        } else {
            events.append(e)
        }
    }

    var description: String { "\(events) tunnel=\(tunnel.count)" }
}

/// Everything the parser reports about a head; ranges index `bytes`, so equal across feeds.
struct HeadSnapshot: Equatable {
    var bytes: [UInt8]
    var method: HTTPMethod
    var methodRange: Range<Int>
    var target: Range<Int>
    var versionMinor: Int
    var status: Int
    var reason: Range<Int>
    var fields: [HTTPHeaderField]
    var framing: HTTPFraming
    var keepAlive: Bool
    var isUpgrade: Bool
    var expectContinue: Bool
    var host: Range<Int>?

    init(_ h: HTTPHead) {
        bytes = h.bytes
        method = h.method
        methodRange = h.methodRange
        target = h.target
        versionMinor = h.versionMinor
        status = h.status
        reason = h.reason
        fields = h.fields
        framing = h.framing
        keepAlive = h.keepAlive
        isUpgrade = h.isUpgrade
        expectContinue = h.expectContinue
        host = h.host
    }
}

/// Feeds buffers to one parser the way the proxy does, checking the contract of `HTTPParser.next` on every
/// call: positions only move forward and stay in the buffer, `.needMore` consumes everything, body ranges
/// are non-empty and are exactly the bytes consumed, events follow head (body* end), a failed parser keeps
/// its error, the loop always makes progress, and a body matches its framing.
struct Feeder {
    let config: FuzzConfig
    var parser: HTTPParser
    var outcome = Outcome()
    var inMessage = false
    var bodyBytes: UInt64 = 0

    init(_ config: FuzzConfig) {
        self.config = config
        parser = HTTPParser(kind: config.kind, limits: config.limits)
        if config.kind == .response { parser.expectResponse(to: config.method) }
    }

    consuming func run(_ pieces: [UnsafeRawBufferPointer]) -> Outcome {
        for buf in pieces {
            if !feed(buf) { return outcome }
        }
        if parser.isUpgraded { return outcome }
        // EOF: a close-delimited body ends, a partial message is truncated, between messages nothing happens.
        for _ in 0..<3 {
            let event = parser.finish()
            if case .needMore = event {
                check(!inMessage || parser.isUpgraded, "finish: needMore inside a message")
                return outcome
            }
            if !handle(event, UnsafeRawBufferPointer(start: nil, count: 0), before: 0, pos: 0) { return outcome }
        }
        check(false, "finish keeps producing events")
        return outcome
    }

    /// False once the parser failed.
    private mutating func feed(_ buf: UnsafeRawBufferPointer) -> Bool {
        var pos = 0
        var steps = 0
        while true {
            if parser.isUpgraded {
                outcome.tunnel += buf[pos...]
                return true
            }
            let before = pos
            let event = parser.next(buf, &pos)
            check(pos >= before && pos <= buf.count, "position moved from \(before) to \(pos) of \(buf.count)")
            steps += 1
            // Each call consumes bytes or yields .head/.end; .end needs a .head, which needs a byte.
            check(steps <= 3 * buf.count + 4, "no progress: \(steps) calls for \(buf.count) bytes")
            if case .needMore = event {
                check(pos == buf.count || parser.isUpgraded, "needMore at \(pos) of \(buf.count)")
                return true
            }
            if !handle(event, buf, before: before, pos: pos) { return false }
        }
    }

    private mutating func handle(_ event: HTTPEvent, _ buf: UnsafeRawBufferPointer, before: Int, pos: Int) -> Bool {
        switch event {
        case .needMore:
            return true
        case .head:
            check(!inMessage, "head inside a message")
            inMessage = true
            bodyBytes = 0
            HeadChecks.validate(parser.head, config)
            outcome.add(.head(HeadSnapshot(parser.head)))
        case .body(let r):
            check(inMessage, "body outside a message")
            check(!r.isEmpty && r.lowerBound >= before && r.upperBound == pos, "body \(r) after \(before)..<\(pos)")
            bodyBytes += UInt64(r.count)
            outcome.add(.body(Array(buf[r])))
        case .end:
            check(inMessage, "end without head")
            inMessage = false
            switch parser.head.framing {
            case .none: check(bodyBytes == 0, "body bytes without framing")
            case .contentLength(let n): check(bodyBytes == n, "\(bodyBytes) body bytes for Content-Length \(n)")
            case .chunked, .closeDelimited: break
            }
            if let max = config.limits.maxBodyBytes, config.kind == .request {
                check(bodyBytes <= UInt64(max), "body above maxBodyBytes")
            }
            outcome.add(.end)
            if config.kind == .response && parser.head.status >= 200 { parser.expectResponse(to: config.method) }
        case .error(let e):
            outcome.add(.error(e))
            var p = 0
            let again = [UInt8]("x".utf8).withUnsafeBytes { parser.next($0, &p) }
            check(again == .error(e), "failed parser returned \(again) after \(e)")
            return false
        }
        return true
    }
}

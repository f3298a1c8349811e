import XCTest

@testable import LBHTTP

/// A parser event with body bytes coalesced and the head summarised, so that event sequences from different
/// feeding patterns can be compared.
enum FedEvent: Equatable, CustomStringConvertible {
    case head(HeadSummary)
    case body([UInt8])
    case end
    case error(HTTPParseError)

    var description: String {
        switch self {
        case .head(let h): return "head(\(h))"
        case .body(let b): return "body(\(String(decoding: b, as: UTF8.self).debugDescription))"
        case .end: return "end"
        case .error(let e): return "error(\(e))"
        }
    }
}

/// Everything the parser says about a head, in comparable form.
struct HeadSummary: Equatable, CustomStringConvertible {
    var method: HTTPMethod
    var methodText: String
    var target: String
    var versionMinor: Int
    var status: Int
    var reason: String
    var fields: [String]  // "name: value" plus " [hop]" when hop-by-hop
    var framing: HTTPFraming
    var keepAlive: Bool
    var isUpgrade: Bool
    var expectContinue: Bool
    var host: String?
    var bytes: [UInt8]

    init(_ h: HTTPHead) {
        method = h.method
        methodText = h.string(h.methodRange)
        target = h.string(h.target)
        versionMinor = h.versionMinor
        status = h.status
        reason = h.string(h.reason)
        fields = h.fields.map { "\(h.string($0.name)): \(h.string($0.value))\($0.isHopByHop ? " [hop]" : "")" }
        framing = h.framing
        keepAlive = h.keepAlive
        isUpgrade = h.isUpgrade
        expectContinue = h.expectContinue
        host = h.host.map { h.string($0) }
        bytes = h.bytes
    }

    var description: String { "\(methodText) \(target) \(status) \(framing) ka=\(keepAlive) \(fields)" }
}

struct FeedResult: Equatable {
    var events: [FedEvent] = []
    /// Bytes left unconsumed after the parser upgraded (they belong to the tunnel).
    var tunnel: [UInt8] = []
    var upgraded = false

    mutating func add(_ e: FedEvent) {
        if case .body(let b) = e, case .body(var prev)? = events.last {
            events.removeLast()  // leaves `prev` uniquely referenced: appending is amortised O(1)
            prev += b
            events.append(.body(prev))
        } else {
            events.append(e)
        }
    }

    var firstHead: HeadSummary? {
        for case .head(let h) in events { return h }
        return nil
    }
    var heads: [HeadSummary] { events.compactMap { if case .head(let h) = $0 { return h } else { return nil } } }
    var body: [UInt8] { events.reduce(into: []) { if case .body(let b) = $1 { $0 += b } } }
    var error: HTTPParseError? {
        if case .error(let e)? = events.last { return e }
        return nil
    }
}

/// Feeds `pieces` one buffer at a time, calling `expectResponse` with the next of `methods` before each
/// response (not again after a 1xx), and `finish()` at the end when `eof`.
func feed(
    _ kind: HTTPMessageKind, _ pieces: [[UInt8]], limits: HTTPLimits = HTTPLimits(), methods: [HTTPMethod] = [],
    eof: Bool = false
) -> FeedResult {
    var parser = HTTPParser(kind: kind, limits: limits)
    var result = FeedResult()
    var methodIndex = 0
    func expectNext() {
        guard kind == .response else { return }
        parser.expectResponse(to: methodIndex < methods.count ? methods[methodIndex] : .get)
        methodIndex += 1
    }
    expectNext()
    var stopped = false
    /// Records the event; false when the feeding loop for this buffer must stop.
    func handle(_ event: HTTPEvent, _ buf: UnsafeRawBufferPointer) -> Bool {
        switch event {
        case .needMore: return false
        case .head: result.add(.head(HeadSummary(parser.head)))
        case .body(let r): result.add(.body(Array(buf[r])))
        case .end:
            result.add(.end)
            if parser.head.status >= 200 { expectNext() }
        case .error(let e):
            result.add(.error(e))
            stopped = true
            return false
        }
        return true
    }
    for piece in pieces where !stopped {
        piece.withUnsafeBytes { buf in
            var pos = 0
            while !stopped {
                if parser.isUpgraded {
                    result.tunnel += buf[pos...]
                    return
                }
                let event = parser.next(buf, &pos)
                if !handle(event, buf) {
                    if case .needMore = event { XCTAssertEqual(pos, buf.count, "needMore must consume everything") }
                    return
                }
            }
        }
    }
    if eof && !stopped && !parser.isUpgraded {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        var event = parser.finish()
        while case .end = event {
            _ = handle(event, empty)
            event = parser.finish()
        }
        _ = handle(event, empty)
    }
    result.upgraded = parser.isUpgraded
    if case .error(let e)? = result.events.last {
        var pos = 0
        let again = [UInt8]("x".utf8).withUnsafeBytes { parser.next($0, &pos) }
        XCTAssertEqual(again, .error(e), "a failed parser must keep returning its error")
    }
    return result
}

/// Feeds `message` whole, byte by byte, and pipelined (`copies` copies in one buffer when the message ends
/// cleanly and is not followed by a tunnel or EOF; 7-byte pieces otherwise), asserts that the event
/// sequences agree, and returns the whole-feed result.
@discardableResult
func assertFeeds(
    _ kind: HTTPMessageKind, _ message: [UInt8], limits: HTTPLimits = HTTPLimits(), methods: [HTTPMethod] = [],
    eof: Bool = false, copies: Int = 3, file: StaticString = #filePath, line: UInt = #line
) -> FeedResult {
    let whole = feed(kind, [message], limits: limits, methods: methods, eof: eof)
    let bytewise = feed(kind, message.map { [$0] }, limits: limits, methods: methods, eof: eof)
    XCTAssertEqual(whole.events, bytewise.events, "whole vs byte by byte", file: file, line: line)
    XCTAssertEqual(whole.tunnel, bytewise.tunnel, "tunnel bytes, whole vs byte by byte", file: file, line: line)

    if whole.events.last == .end && !whole.upgraded && !eof {
        let repeated = (0..<copies).flatMap { _ in message }
        let allMethods = (0..<copies).flatMap { _ in methods }
        let pipelined = feed(kind, [repeated], limits: limits, methods: allMethods)
        let expected = (0..<copies).flatMap { _ in whole.events }
        XCTAssertEqual(pipelined.events, expected, "pipelined x\(copies)", file: file, line: line)
    } else {
        let pieces = stride(from: 0, to: message.count, by: 7).map { Array(message[$0..<min($0 + 7, message.count)]) }
        let sevens = feed(kind, pieces, limits: limits, methods: methods, eof: eof)
        XCTAssertEqual(whole.events, sevens.events, "whole vs 7-byte pieces", file: file, line: line)
        XCTAssertEqual(whole.tunnel, sevens.tunnel, "tunnel bytes, whole vs 7-byte pieces", file: file, line: line)
    }
    return whole
}

/// Asserts the message (fed three ways) is rejected with `error`, whose status is `status`.
func assertRejects(
    _ message: String, _ error: HTTPParseError, status: Int? = nil, kind: HTTPMessageKind = .request,
    limits: HTTPLimits = HTTPLimits(), methods: [HTTPMethod] = [], eof: Bool = false,
    file: StaticString = #filePath, line: UInt = #line
) {
    let r = assertFeeds(kind, bytes(message), limits: limits, methods: methods, eof: eof, file: file, line: line)
    XCTAssertEqual(r.error, error, "events: \(r.events)", file: file, line: line)
    if let status { XCTAssertEqual(error.status, status, file: file, line: line) }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// SplitMix64 (the generator LBCore routes with), repeated here so the codec's tests need only the codec.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

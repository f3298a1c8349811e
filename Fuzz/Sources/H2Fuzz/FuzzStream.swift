import LBHTTP

/// What the "backend" and the proxy do with one stream, derived from the input's seed byte and the stream id, so
/// streams of one connection differ and the fuzzer can steer them through byte 1.
struct StreamPlan {
    enum Answer {
        /// lb answers at the head (no server, a rejected head): a body it has whole, then the stream ends; a
        /// request still being sent is reset with NO_ERROR after the last DATA (RFC 9113 §8.1).
        case atHead
        /// The backend's response once the request ended, its body arriving over the next turns.
        case proxied
        /// The backend's response while the request is still coming (an early answer), body as for `proxied`.
        case proxiedEarly
        /// The exchange failed after the head: RST_STREAM(INTERNAL_ERROR).
        case abort
        /// No answer until the client resets the stream or the connection ends.
        case silent
    }

    var answer: Answer
    /// The response status for a proxied answer; 204 and 304 have no body.
    var status: Int
    var bodySize: Int
    /// Request bytes are credited at the end of the turn, not at once (the upstream's queue was full).
    var creditLater: Bool
    /// After nghttp2 closed the stream it keeps its slot one more turn (its aborted backend request is not
    /// closed yet), as a reset stream does in lb.
    var holdSlot: Bool

    init(seed: UInt8, id: Int32) {
        var x = UInt32(seed) << 16 ^ UInt32(truncatingIfNeeded: id)
        x = x &* 0x9E37_79B1
        x ^= x >> 15
        answer = [.proxied, .proxied, .proxied, .proxiedEarly, .atHead, .abort, .silent, .proxied][Int(x & 7)]
        status = [200, 200, 404, 204, 304, 200, 500, 200][Int(x >> 3 & 7)]
        bodySize = [5, 0, 3000, 70000][Int(x >> 6 & 3)]
        creditLater = x >> 8 & 1 != 0
        holdSlot = x >> 9 & 3 == 0
    }
}

/// One request stream's state, the pure part of `H2Stream`. Reused through the connection's spare list, as
/// lb reuses retired streams, so a parser is reset rather than new for most streams.
final class FuzzStream {
    var id: Int32 = 0
    var plan: StreamPlan
    var parser: HTTPParser

    var headersDone = false
    /// END_STREAM arrived (on HEADERS, DATA or trailers).
    var requestEnded = false
    /// The head could not be forwarded (malformed, or answered with an error status): its body is discarded.
    var rejected = false
    var contentLength: UInt64?
    var received: UInt64 = 0
    /// Request bytes delivered and not yet credited back to the client's windows.
    var held = 0
    /// What nghttp2 delivered of this stream's DATA, and what was consumed of it.
    var delivered = 0
    var consumed = 0
    var resetSubmitted = false
    var protocolClosed = false
    /// Turns the slot is still held after nghttp2 closed the stream.
    var slotTurns = 0

    var responded = false
    var responseHasBody = false
    /// Response bytes the backend still has to deliver, and those delivered not yet taken by nghttp2.
    var toDeliver = 0
    var available = 0
    var responseEnded = false
    var resetAfterResponse = false

    init(id: Int32, seed: UInt8, limits: HTTPLimits) {
        plan = StreamPlan(seed: seed, id: id)
        parser = HTTPParser(kind: .request, limits: limits)
        reset(id: id, seed: seed)
    }

    func reset(id: Int32, seed: UInt8) {
        self.id = id
        plan = StreamPlan(seed: seed, id: id)
        parser.reset()
        headersDone = false
        requestEnded = false
        rejected = false
        contentLength = nil
        received = 0
        held = 0
        delivered = 0
        consumed = 0
        resetSubmitted = false
        protocolClosed = false
        slotTurns = 0
        responded = false
        responseHasBody = false
        toDeliver = 0
        available = 0
        responseEnded = false
        resetAfterResponse = false
    }

    /// The byte every response body byte of stream `id` is, so the checker can tell DATA was not mixed up.
    static func pattern(_ id: Int32) -> UInt8 { UInt8(truncatingIfNeeded: id &* 7 &+ 0x41) }
}

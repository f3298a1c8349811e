/// A sans-I/O HTTP/1.1 message parser: feed it bytes, it yields events. It never touches a
/// socket, never copies body bytes, and enforces `HTTPLimits` as bytes arrive.
///
/// Usage: call `next(input, &pos)` until it returns `.needMore` (all of `input` consumed). `.head` makes
/// `head` valid until the first byte of the next message; `.body(range)` gives DATA bytes in `input`;
/// `.end` finishes a message, after which the caller may stop and keep the rest of `input` (pipelining).
/// After `.error` the parser stays failed and returns the same error. On EOF call `finish()`.
///
/// Responses: call `expectResponse(to:)` before each response. A 1xx other than 101 yields `.head`, `.end`
/// and the parser waits for another response to the same request. 101, and 2xx to CONNECT, yield `.head`,
/// `.end`, then `isUpgraded` is true: `next` consumes nothing more and returns `.needMore`.
///
/// Not thread-safe; a value owned by one connection on its loop thread.
public struct HTTPParser: Sendable {
    @usableFromInline
    enum State: Sendable {
        case head
        case endPending
        case contentLength(remaining: UInt64)
        case chunked(ChunkState)
        case closeDelimited
        case upgraded
        case failed(HTTPParseError)
    }

    /// Leading CRLFs ignored before a request line (RFC 9112 §2.2: "SHOULD ignore at least one"). A few
    /// cover clients that append CRLF after a POST body; more is garbage.
    public static let maxLeadingEmptyLines = 4

    public let kind: HTTPMessageKind
    public let limits: HTTPLimits
    public private(set) var head = HTTPHead()

    @usableFromInline var state: State = .head
    @usableFromInline var accumulator = HTTPLineAccumulator()
    /// Set by `.end`: the next byte starts a new message, so `head` is cleared lazily then.
    private var headIsStale = false
    /// Responses: the method of the request being answered.
    private var requestMethod: HTTPMethod = .get
    /// Chunked bodies: sum of the chunk sizes so far (maxBodyBytes), and scratch for extensions and trailers.
    var chunkedTotal: UInt64 = 0
    var scratch: [UInt8] = []
    /// The trailer fields of the chunked message that just ended, ranges of `trailerBytes`: set by its `.end`,
    /// empty for any other message, valid until the first byte of the next message is fed.
    public internal(set) var trailers: [HTTPHeaderField] = []
    /// The bytes `trailers` index into (the trailer section's field lines).
    public var trailerBytes: [UInt8] { scratch }

    public init(kind: HTTPMessageKind, limits: HTTPLimits = HTTPLimits()) {
        self.kind = kind
        self.limits = limits
    }

    /// The state of a new parser, for a reused connection or stream: the head's buffers keep their capacity,
    /// so the next message allocates nothing.
    public mutating func reset() {
        var bytes: [UInt8] = []
        swap(&bytes, &head.bytes)
        bytes.removeAll(keepingCapacity: true)
        var fields: [HTTPHeaderField] = []
        swap(&fields, &head.fields)
        fields.removeAll(keepingCapacity: true)
        head = HTTPHead()
        swap(&bytes, &head.bytes)
        swap(&fields, &head.fields)
        state = .head
        accumulator.reset()
        headIsStale = false
        requestMethod = .get
        chunkedTotal = 0
        scratch.removeAll(keepingCapacity: true)
    }

    /// Whether the head's buffers are allocated (`dropHeadBuffers` frees them).
    public var holdsHeadBuffers: Bool { head.bytes.capacity != 0 || head.fields.capacity != 0 }

    /// Between messages (`isBetweenMessages`): frees the head's buffers while the connection is idle; the next
    /// head allocates them again. `head` is then empty.
    public mutating func dropHeadBuffers() {
        head = HTTPHead()
        headIsStale = false
    }

    /// Responses only: the method of the request the next response answers. HEAD → no body whatever the
    /// CL/TE; CONNECT 2xx → tunnel.
    public mutating func expectResponse(to method: HTTPMethod) {
        requestMethod = method
    }

    /// No byte of a next message has been consumed yet (leading empty lines do not count).
    @inlinable
    public var isBetweenMessages: Bool {
        if case .head = state { return !accumulator.started && !accumulator.sawCR }
        return false
    }

    /// After a 101 response (or a 2xx to CONNECT) the bytes are no longer HTTP: the caller tunnels them.
    @inlinable
    public var isUpgraded: Bool {
        if case .upgraded = state { return true }
        return false
    }

    @inlinable
    public mutating func next(_ input: UnsafeRawBufferPointer, _ pos: inout Int) -> HTTPEvent {
        switch state {
        case .failed(let e):
            return .error(e)
        case .upgraded:
            return .needMore
        case .endPending:
            return endMessage()
        case .head:
            return nextHead(input, &pos)
        case .contentLength(let remaining):
            if pos >= input.count { return .needMore }
            let n = Int(min(UInt64(input.count - pos), remaining))
            let range = pos..<(pos + n)
            pos += n
            state = remaining == UInt64(n) ? .endPending : .contentLength(remaining: remaining - UInt64(n))
            return .body(range)
        case .chunked:
            return nextChunked(input, &pos)
        case .closeDelimited:
            if pos >= input.count { return .needMore }
            let range = pos..<input.count
            pos = input.count
            return .body(range)
        }
    }

    /// The peer closed. A close-delimited body ends (`.end`); EOF in the middle of a head or of a
    /// Content-Length/chunked body is `.error(.truncated)`; between messages it is `.needMore` (clean close).
    public mutating func finish() -> HTTPEvent {
        switch state {
        case .failed(let e): return .error(e)
        case .upgraded: return .needMore
        case .endPending, .closeDelimited: return endMessage()
        case .head: return isBetweenMessages ? .needMore : fail(.truncated)
        case .contentLength, .chunked: return fail(.truncated)
        }
    }

    @usableFromInline
    mutating func fail(_ e: HTTPParseError) -> HTTPEvent {
        state = .failed(e)
        return .error(e)
    }

    @usableFromInline
    mutating func nextHead(_ input: UnsafeRawBufferPointer, _ pos: inout Int) -> HTTPEvent {
        if pos >= input.count { return .needMore }
        if headIsStale {
            head.bytes.removeAll(keepingCapacity: true)
            if !trailers.isEmpty { trailers.removeAll(keepingCapacity: true) }
            headIsStale = false
        }
        let config = HTTPLineAccumulator.Config(
            maxFirstLine: limits.maxRequestLine,
            firstLineError: kind == .request ? .requestLineTooLong : .statusLineTooLong,
            maxBytes: limits.maxHeaderBytes, maxFields: limits.maxHeaderCount,
            maxLeadingEmptyLines: kind == .request ? Self.maxLeadingEmptyLines : 0, hasStartLine: true)
        switch accumulator.feed(input, &pos, into: &head.bytes, config) {
        case .needMore: return .needMore
        case .error(let e): return fail(e)
        case .complete: break
        }
        accumulator.reset()
        if let e = parseCompleteHead() { return fail(e) }
        return enterBody()
    }

    /// A whole request head the caller composed (the request an HTTP/2 stream stands for) instead of bytes off
    /// a socket: CRLF-terminated lines ending in an empty line, the first `firstLineLength` bytes long without
    /// its CRLF, then `fieldLines` field lines. The line scan is skipped, not the limits or the parsing: the
    /// result is what `next` returns for the same bytes (`.head` or `.error`). The buffers are swapped, so
    /// `bytes` comes back holding the previous head's storage and neither side allocates.
    public mutating func parseComposedHead(_ bytes: inout [UInt8], firstLineLength: Int, fieldLines: Int) -> HTTPEvent {
        guard case .head = state, isBetweenMessages else { return fail(.invalidRequestLine) }
        if firstLineLength > limits.maxRequestLine { return fail(.requestLineTooLong) }
        if bytes.count > limits.maxHeaderBytes { return fail(.headerTooLarge) }
        if fieldLines > limits.maxHeaderCount { return fail(.tooManyHeaders) }
        swap(&bytes, &head.bytes)
        headIsStale = false
        if let e = parseCompleteHead() { return fail(e) }
        return enterBody()
    }

    /// After a head: the state its framing calls for.
    private mutating func enterBody() -> HTTPEvent {
        switch head.framing {
        case .none, .contentLength(0): state = .endPending
        case .contentLength(let n): state = .contentLength(remaining: n)
        case .chunked:
            chunkedTotal = 0
            state = .chunked(.size(value: 0, digits: 0, lineLength: 0))
        case .closeDelimited: state = .closeDelimited
        }
        return .head
    }

    /// Resets every parsed field of `head` and parses `head.bytes` into it.
    private mutating func parseCompleteHead() -> HTTPParseError? {
        var bytes: [UInt8] = []
        swap(&bytes, &head.bytes)  // parse from the bytes while writing the other fields: no copy
        var fields: [HTTPHeaderField] = []
        swap(&fields, &head.fields)  // unique again, so clearing keeps the capacity
        fields.removeAll(keepingCapacity: true)
        head = HTTPHead()
        swap(&fields, &head.fields)
        let parser = HTTPHeadParser(kind: kind, limits: limits, requestMethod: requestMethod)
        let error = bytes.withUnsafeBufferPointer { parser.parse($0, into: &head) }
        swap(&bytes, &head.bytes)
        return error
    }

    @usableFromInline
    mutating func endMessage() -> HTTPEvent {
        headIsStale = true
        if kind == .response {
            let s = head.status
            if s == 101 || (requestMethod == .connect && s >= 200 && s < 300) {
                state = .upgraded
                return .end
            }
            if s >= 200 { requestMethod = .get }  // a 1xx leaves us waiting for the final response
        }
        state = .head
        return .end
    }
}

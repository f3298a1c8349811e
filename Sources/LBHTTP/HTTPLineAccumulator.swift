/// Copies a CRLF-terminated line block (a head, or a trailer section) from the caller's buffers into one
/// contiguous array, checking line terminators and size limits as bytes arrive, so that limits are enforced
/// before a whole oversized head has been buffered.
///
/// Contract: `feed` consumes bytes from `pos` and appends them to `buf` until the empty line that ends the
/// block (included in `buf`). Bare LF and bare CR are errors wherever they appear: we require CRLF.
@usableFromInline
struct HTTPLineAccumulator: Sendable {
    enum Result { case needMore, complete, error(HTTPParseError) }

    struct Config {
        /// Limit on the first line (request/status line); nil for trailers.
        var maxFirstLine: Int?
        var firstLineError: HTTPParseError
        /// Limit on `buf.count`.
        var maxBytes: Int
        /// Limit on field lines (lines after the first, or all lines for trailers).
        var maxFields: Int
        /// Empty lines ignored before the first line (RFC 9112 §2.2); 0 for trailers.
        var maxLeadingEmptyLines: Int
        /// Trailers have no start line: every line is a field line.
        var hasStartLine: Bool
    }

    @usableFromInline private(set) var sawCR = false
    private var lineStart = 0
    private var lines = 0
    private var leadingEmptyLines = 0
    /// True once a byte of the block itself (not a leading empty line) has been consumed.
    @usableFromInline private(set) var started = false

    mutating func reset() { self = HTTPLineAccumulator() }

    mutating func feed(
        _ input: UnsafeRawBufferPointer, _ pos: inout Int, into buf: inout [UInt8], _ config: Config
    ) -> Result {
        let end = input.count
        var i = pos
        // input[copyFrom..<i] is consumed but not yet in `buf`; `count` is what buf.count would be. The bytes
        // go in with one append when feed returns (a head usually arrives in one read), not one per line.
        var copyFrom = pos
        var count = buf.count
        defer {
            if copyFrom < i { buf.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[copyFrom..<i])) }
            pos = i
        }
        while i < end {
            let b = input[i]
            if sawCR {
                guard b == ASCII.lf else { return .error(.bareCR) }
                sawCR = false
                i += 1
                count += 1
                if count > config.maxBytes { return .error(.headerTooLarge) }
                if count - lineStart == 2 {  // an empty line
                    if config.hasStartLine && lines == 0 {
                        // Before the request line: ignore it, a few times (robustness for clients that send
                        // an extra CRLF after a body), but not forever.
                        leadingEmptyLines += 1
                        buf.removeAll(keepingCapacity: true)
                        copyFrom = i
                        count = 0
                        started = false
                        if leadingEmptyLines > config.maxLeadingEmptyLines { return .error(.tooManyLeadingEmptyLines) }
                        continue
                    }
                    return .complete
                }
                if lines == 0, config.hasStartLine, let first = config.maxFirstLine, count - 2 > first {
                    return .error(config.firstLineError)
                }
                lines += 1
                lineStart = count
                let fields = config.hasStartLine ? lines - 1 : lines
                if fields > config.maxFields { return .error(.tooManyHeaders) }
                continue
            }
            if b == ASCII.lf { return .error(.bareLF) }
            started = true
            if b == ASCII.cr {
                sawCR = true
                i += 1
                count += 1
                if count > config.maxBytes { return .error(.headerTooLarge) }
                continue
            }
            // Take the run up to the next CR/LF at once, but never past the limits.
            var room = config.maxBytes - count
            if lines == 0, config.hasStartLine, let first = config.maxFirstLine {
                room = min(room, first - (count - lineStart))
            }
            let j = HTTPSyntax.firstLineBreak(input, from: i, to: min(end, i + max(room, 0) + 1))
            count += j - i
            i = j
            if lines == 0, config.hasStartLine, let first = config.maxFirstLine, count - lineStart > first {
                return .error(config.firstLineError)
            }
            if count > config.maxBytes { return .error(.headerTooLarge) }
        }
        return .needMore
    }
}

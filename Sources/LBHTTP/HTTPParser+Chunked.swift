/// Chunked transfer coding (RFC 9112 §7.1), decoded as a byte-level state machine that yields the chunk
/// DATA as ranges of the caller's buffer.
///
/// chunk-size = 1*HEXDIG (no sign, "0x" or leading whitespace; above Int64.max → error);
/// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ), validated, then ignored;
/// a chunk line (size + extensions) is limited to `maxChunkLine` bytes;
/// chunk data must be followed by CRLF;
/// trailer fields are validated like header fields, count toward maxHeaderBytes/maxHeaderCount together
/// with the head, and are kept as `trailers` until the next message starts (an HTTP/1.1 client never gets
/// them: the proxy re-frames the body; an HTTP/2 stream passes them on as a trailing HEADERS frame).
extension HTTPParser {
    @usableFromInline
    enum ChunkState: Sendable {
        case size(value: UInt64, digits: Int, lineLength: Int)
        case sizeWhitespace(value: UInt64, lineLength: Int)
        case extensions(value: UInt64)
        case sizeLF(value: UInt64)
        case data(remaining: UInt64)
        case dataCR
        case dataLF
        case trailers
    }

    static let maxChunkLine = 4096

    @usableFromInline
    mutating func nextChunked(_ input: UnsafeRawBufferPointer, _ pos: inout Int) -> HTTPEvent {
        while case .chunked(let cs) = state {
            if case .trailers = cs { return nextTrailers(input, &pos) }
            if pos >= input.count { return .needMore }
            switch cs {
            case .data(let remaining):
                let n = Int(min(UInt64(input.count - pos), remaining))
                let range = pos..<(pos + n)
                pos += n
                state = .chunked(remaining == UInt64(n) ? .dataCR : .data(remaining: remaining - UInt64(n)))
                return .body(range)
            case .dataCR:
                guard input[pos] == ASCII.cr else { return fail(.missingChunkCRLF) }
                pos += 1
                state = .chunked(.dataLF)
            case .dataLF:
                guard input[pos] == ASCII.lf else { return fail(.missingChunkCRLF) }
                pos += 1
                state = .chunked(.size(value: 0, digits: 0, lineLength: 0))
            default:
                let b = input[pos]
                pos += 1
                if let e = chunkLineByte(b, cs) { return fail(e) }
            }
        }
        return next(input, &pos)  // left the chunked state (end of body)
    }

    /// One byte of a chunk-size line. Updates `state`; returns an error for malformed input.
    private mutating func chunkLineByte(_ b: UInt8, _ cs: ChunkState) -> HTTPParseError? {
        switch cs {
        case .size(let value, let digits, let lineLength):
            if lineLength + 1 > Self.maxChunkLine { return .chunkLineTooLong }
            if let h = HTTPSyntax.hexValue(b) {
                guard value <= UInt64(Int64.max) >> 4 else { return .chunkSizeOverflow }
                state = .chunked(.size(value: value << 4 | UInt64(h), digits: digits + 1, lineLength: lineLength + 1))
                return nil
            }
            if digits == 0 { return .invalidChunkSize }
            return afterSize(b, value, lineLength)
        case .sizeWhitespace(let value, let lineLength):
            if lineLength + 1 > Self.maxChunkLine { return .chunkLineTooLong }
            if HTTPSyntax.isOWS(b) {
                state = .chunked(.sizeWhitespace(value: value, lineLength: lineLength + 1))
                return nil
            }
            // BWS after the size is only allowed before an extension.
            guard b == ASCII.semicolon else { return .invalidChunkSize }
            return afterSize(b, value, lineLength)
        case .extensions(let value):
            if b == ASCII.cr {
                guard Self.isValidChunkExtensions(scratch) else { return .invalidChunkExtension }
                state = .chunked(.sizeLF(value: value))
                return nil
            }
            if b == ASCII.lf { return .bareLF }
            scratch.append(b)
            return scratch.count > Self.maxChunkLine ? .chunkLineTooLong : nil
        case .sizeLF(let value):
            guard b == ASCII.lf else { return .bareCR }
            return startChunk(value)
        case .data, .dataCR, .dataLF, .trailers:
            return nil  // handled by the caller
        }
    }

    private mutating func afterSize(_ b: UInt8, _ value: UInt64, _ lineLength: Int) -> HTTPParseError? {
        switch b {
        case ASCII.cr:
            state = .chunked(.sizeLF(value: value))
        case ASCII.sp, ASCII.htab:
            state = .chunked(.sizeWhitespace(value: value, lineLength: lineLength + 1))
        case ASCII.semicolon:
            scratch.removeAll(keepingCapacity: true)
            scratch.append(b)
            state = .chunked(.extensions(value: value))
        case ASCII.lf:
            return .bareLF
        default:
            return .invalidChunkSize
        }
        return nil
    }

    private mutating func startChunk(_ size: UInt64) -> HTTPParseError? {
        if size == 0 {
            scratch.removeAll(keepingCapacity: true)
            if !trailers.isEmpty { trailers.removeAll(keepingCapacity: true) }
            accumulator.reset()
            state = .chunked(.trailers)
            return nil
        }
        chunkedTotal += size  // both ≤ Int64.max: no overflow in UInt64
        if kind == .request, let max = limits.maxBodyBytes, chunkedTotal > UInt64(max) { return .bodyTooLarge }
        state = .chunked(.data(remaining: size))
        return nil
    }

    private mutating func nextTrailers(_ input: UnsafeRawBufferPointer, _ pos: inout Int) -> HTTPEvent {
        let config = HTTPLineAccumulator.Config(
            maxFirstLine: nil, firstLineError: .headerTooLarge,
            maxBytes: max(0, limits.maxHeaderBytes - head.bytes.count),
            maxFields: max(0, limits.maxHeaderCount - head.fields.count),
            maxLeadingEmptyLines: 0, hasStartLine: false)
        switch accumulator.feed(input, &pos, into: &scratch, config) {
        case .needMore: return .needMore
        case .error(let e): return fail(e)
        case .complete: break
        }
        accumulator.reset()
        var fields: [HTTPHeaderField] = []
        let error: HTTPParseError? = scratch.withUnsafeBufferPointer { p in
            var i = 0
            while true {
                let e = HTTPHeadParser.findCR(p, from: i)
                if e == i { return nil }
                switch HTTPHeadParser.parseFieldLine(p, i..<e) {
                case .failure(let err): return err
                case .success(let field): fields.append(field)
                }
                i = e + 2
            }
        }
        if let error { return fail(error) }
        if !fields.isEmpty { trailers = fields }
        return endMessage()
    }

    /// Validates `; name [= value]` repeated, with BWS around ";" and "=" (RFC 9112 §7.1.1).
    static func isValidChunkExtensions(_ s: [UInt8]) -> Bool {
        var i = 0
        let n = s.count
        func skipBWS() { while i < n && HTTPSyntax.isOWS(s[i]) { i += 1 } }
        func token() -> Bool {
            let start = i
            while i < n && HTTPSyntax.isTchar(s[i]) { i += 1 }
            return i > start
        }
        while true {
            skipBWS()
            if i == n { return true }
            guard s[i] == ASCII.semicolon else { return false }
            i += 1
            skipBWS()
            guard token() else { return false }
            skipBWS()
            if i < n && s[i] == ASCII.equals {
                i += 1
                skipBWS()
                if i < n && s[i] == ASCII.dquote {
                    i += 1
                    var closed = false
                    while i < n {
                        let c = s[i]
                        if c == ASCII.dquote { closed = true; i += 1; break }
                        if c == ASCII.backslash {
                            i += 1
                            guard i < n, HTTPSyntax.isFieldValueByte(s[i]) else { return false }
                        } else if !HTTPSyntax.isFieldValueByte(c) {
                            return false
                        }
                        i += 1
                    }
                    guard closed else { return false }
                } else {
                    guard token() else { return false }
                }
            }
        }
    }
}

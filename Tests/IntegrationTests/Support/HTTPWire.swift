import Foundation

/// Sans-I/O pieces of HTTP/1.1 framing (RFC 9112) shared by the test client and `SpyBackend`: find the end of a head,
/// split it into fields, walk a chunked body. Pure functions over byte arrays, so the self-tests can feed them bytes.
enum HTTPWire {
    struct Malformed: Error {
        let reason: String
    }

    static let crlf: [UInt8] = [13, 10]
    static let headTerminator: [UInt8] = [13, 10, 13, 10]

    /// The index of the first occurrence of `needle` in `bytes` at or after `start`, or nil.
    static func firstIndex(of needle: [UInt8], in bytes: [UInt8], from start: Int = 0) -> Int? {
        guard !needle.isEmpty, bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        var i = start
        while i <= bytes.count - needle.count {
            if bytes[i] == needle[0] && bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// The index just past the `CRLF CRLF` ending the head that starts at `start`, or nil if not all there yet.
    static func headEnd(in bytes: [UInt8], from start: Int = 0) -> Int? {
        firstIndex(of: headTerminator, in: bytes, from: start).map { $0 + 4 }
    }

    /// Splits a head (start line and field lines, without the final empty line) into its start line and fields.
    /// Strict on purpose: CRLF line ends, `name: value` with a token name; obsolete line folding is rejected.
    static func parseHead(_ head: ArraySlice<UInt8>) throws -> (startLine: String, fields: [(String, String)]) {
        var lines: [String] = []
        var lineStart = head.startIndex
        var i = head.startIndex
        while i < head.endIndex {
            if head[i] == 13, i + 1 < head.endIndex, head[i + 1] == 10 {
                lines.append(String(decoding: head[lineStart..<i], as: UTF8.self))
                i += 2
                lineStart = i
            } else {
                i += 1
            }
        }
        if lineStart < head.endIndex { lines.append(String(decoding: head[lineStart...], as: UTF8.self)) }
        // Tolerate the terminator being passed in: drop trailing empty lines.
        while lines.last == "" { lines.removeLast() }
        guard let startLine = lines.first, !startLine.isEmpty else { throw Malformed(reason: "empty head") }
        var fields: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else {
                throw Malformed(reason: "field line without colon: \(line)")
            }
            let name = String(line[..<colon])
            guard !name.isEmpty, name.allSatisfy(isTokenCharacter) else {
                throw Malformed(reason: "invalid field name (or obsolete line folding): \(line)")
            }
            fields.append((name, line[line.index(after: colon)...].trimmingCharacters(in: [" ", "\t"])))
        }
        return (startLine, fields)
    }

    static func values(of name: String, in fields: [(String, String)]) -> [String] {
        fields.filter { $0.0.caseInsensitiveCompare(name) == .orderedSame }.map(\.1)
    }

    /// The codings listed by all `Transfer-Encoding` fields, lower-cased, in order; empty if there is none.
    static func transferCodings(_ fields: [(String, String)]) -> [String] {
        values(of: "Transfer-Encoding", in: fields)
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }

    /// The message's Content-Length, or nil if it has none. Repeated or comma-listed values must all agree
    /// (RFC 9110 §8.6); anything else is malformed.
    static func contentLength(_ fields: [(String, String)]) throws -> Int? {
        let values = values(of: "Content-Length", in: fields)
            .flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = values.first else { return nil }
        guard values.allSatisfy({ $0 == first }), !first.isEmpty, first.utf8.allSatisfy({ (48...57).contains($0) }),
            let length = Int(first)
        else { throw Malformed(reason: "invalid Content-Length: \(values)") }
        return length
    }

    enum ChunkedResult {
        case needMore
        /// `end` is the index just past the last CRLF of the chunked body (after any trailers).
        case complete(body: [UInt8], trailers: [(String, String)], end: Int)
    }

    /// Decodes a chunked body (RFC 9112 §7.1) starting at `start`. Chunk extensions are ignored.
    static func decodeChunked(_ bytes: [UInt8], from start: Int) throws -> ChunkedResult {
        var body: [UInt8] = []
        var pos = start
        while true {
            guard let lineEnd = firstIndex(of: crlf, in: bytes, from: pos) else {
                if bytes.count - pos > 4_096 { throw Malformed(reason: "chunk-size line too long") }
                return .needMore
            }
            let line = String(decoding: bytes[pos..<lineEnd], as: UTF8.self)
            let sizeText = line.prefix { $0 != ";" }.trimmingCharacters(in: [" ", "\t"])
            guard !sizeText.isEmpty, sizeText.allSatisfy(\.isHexDigit), sizeText.count <= 15,
                let size = Int(sizeText, radix: 16)
            else { throw Malformed(reason: "invalid chunk size line: \(line)") }
            pos = lineEnd + 2
            if size == 0 { break }
            guard bytes.count >= pos + size + 2 else { return .needMore }
            guard bytes[(pos + size)..<(pos + size + 2)].elementsEqual(crlf) else {
                throw Malformed(reason: "chunk of \(size) bytes not followed by CRLF")
            }
            body += bytes[pos..<(pos + size)]
            pos += size + 2
        }
        var trailerLines: [UInt8] = []
        while true {
            guard let lineEnd = firstIndex(of: crlf, in: bytes, from: pos) else { return .needMore }
            if lineEnd == pos {
                let trailers =
                    trailerLines.isEmpty ? [] : try parseHead((Array("X\r\n".utf8) + trailerLines)[...]).fields
                return .complete(body: body, trailers: trailers, end: pos + 2)
            }
            trailerLines += bytes[pos..<(lineEnd + 2)]
            pos = lineEnd + 2
        }
    }

    private static func isTokenCharacter(_ c: Character) -> Bool {
        guard c.isASCII, let v = c.asciiValue else { return false }
        return (48...57).contains(v) || (65...90).contains(v) || (97...122).contains(v) || "!#$%&'*+-.^_`|~".contains(c)
    }
}

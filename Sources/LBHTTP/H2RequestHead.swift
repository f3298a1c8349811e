/// The HTTP/1.1 request head an HTTP/2 request stands for (RFC 9113 §8.3.1, §8.2), built from the header
/// fields of one HEADERS block as they are decoded, then parsed back with this module's own request parser so
/// the rest of the proxy (routing keys, the head writer, the access log) sees an ordinary `HTTPHead`. Pure
/// Swift, no I/O: the HPACK decoding is the caller's.
///
/// Usage: `reset()`, `add(name:value:)` for every field in order, then `finish(hasBody:parser:)`.
/// A field that makes the request malformed (RFC 9113 §8.1.1) is remembered and reported by `finish`; later
/// fields are ignored. Nothing here allocates once the buffers have grown to a typical head.
public struct H2RequestHead: Sendable {
    /// Why a request cannot be forwarded.
    public enum Failure: Equatable, Sendable {
        /// Malformed (RFC 9113 §8.1.1): the stream is reset with PROTOCOL_ERROR.
        case malformed
        /// Well-formed HTTP/2 that cannot be forwarded: answered with this status (400, 405, 431...).
        case status(Int)
    }

    private var method: [UInt8] = []
    private var path: [UInt8] = []
    private var authority: [UInt8] = []
    private var host: [UInt8] = []
    /// The regular fields, already as HTTP/1.1 field lines ("name: value\r\n"), cookie and host aside: the
    /// first `linesUsed` bytes. The array only grows, so a line is written through one pointer rather than by
    /// six appends that each check capacity and uniqueness.
    private var lines: [UInt8] = []
    private var linesUsed = 0
    private var cookie: [UInt8] = []
    private var seen: UInt8 = 0
    private var sawRegular = false
    private var sawHost = false
    private var sawContentLength = false
    private var fieldCount = 0
    /// Field lines in `lines`.
    private var lineCount = 0
    /// The first problem; once set, later fields are ignored.
    public private(set) var failure: Failure?
    /// The value of `content-length`, when the request has one (validated: digits, one value).
    public private(set) var contentLength: UInt64?
    /// The request said `expect: 100-continue` (RFC 9110 §10.1.1): the client may wait for a 100 before its body.
    public private(set) var expectsContinue = false
    /// The synthesized head's bytes, kept to reuse their capacity.
    private var bytes: [UInt8] = []

    private static let methodBit: UInt8 = 1, schemeBit: UInt8 = 2, pathBit: UInt8 = 4, authorityBit: UInt8 = 8

    public init() {}

    /// Starts a new request, keeping the buffers' capacity.
    public mutating func reset() {
        method.removeAll(keepingCapacity: true)
        path.removeAll(keepingCapacity: true)
        authority.removeAll(keepingCapacity: true)
        host.removeAll(keepingCapacity: true)
        linesUsed = 0
        cookie.removeAll(keepingCapacity: true)
        seen = 0
        sawRegular = false
        sawHost = false
        sawContentLength = false
        fieldCount = 0
        lineCount = 0
        failure = nil
        contentLength = nil
        expectsContinue = false
    }

    /// One decoded header field, in the order received. Names arrive lowercase in HTTP/2 (RFC 9113 §8.2.1):
    /// an uppercase byte, a pseudo-header after a regular field, an unknown or repeated pseudo-header, a
    /// connection-specific field or a `te` other than `trailers` makes the request malformed. CR, LF and NUL
    /// are refused in every name and value here, before anything is serialised, and so is a value that starts
    /// or ends with SP or HTAB (RFC 9113 §8.2.1).
    public mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        guard !name.isEmpty else { return fail(.malformed) }
        for b in value where b == 0 || b == ASCII.cr || b == ASCII.lf { return fail(.malformed) }
        if let first = value.first, let last = value.last, HTTPSyntax.isOWS(first) || HTTPSyntax.isOWS(last) {
            return fail(.malformed)
        }
        if name[0] == ASCII.colon {
            if sawRegular { return fail(.malformed) }
            let bit: UInt8
            if Self.equals(name, ":method") {
                bit = Self.methodBit
                method.append(contentsOf: value)
            } else if Self.equals(name, ":scheme") {
                bit = Self.schemeBit
                // RFC 9113 §8.3.1: a proxy forwards http and https only.
                if !Self.equals(value, "http") && !Self.equals(value, "https") { return fail(.malformed) }
            } else if Self.equals(name, ":path") {
                bit = Self.pathBit
                path.append(contentsOf: value)
            } else if Self.equals(name, ":authority") {
                bit = Self.authorityBit
                authority.append(contentsOf: value)
            } else {
                // `:protocol` (extended CONNECT) is not enabled, and no other pseudo-header exists.
                return fail(.malformed)
            }
            if seen & bit != 0 { return fail(.malformed) }
            seen |= bit
            return
        }
        sawRegular = true
        for b in name where !HTTPSyntax.isTchar(b) || (b >= 0x41 && b <= 0x5A) { return fail(.malformed) }
        fieldCount += 1
        // The fields treated specially, told apart by length first: most names match none of them.
        switch name.count {
        case 2:
            if Self.equals(name, "te") {
                // RFC 9113 §8.2.2: `te` may only say trailers; hop-by-hop, an HTTP/1.1 backend is never asked
                // for trailers.
                if !Self.equals(value, "trailers") { fail(.malformed) }
                return
            }
        case 4:
            if Self.equals(name, "host") {
                if sawHost { return fail(.status(400)) }
                sawHost = true
                host.append(contentsOf: value)
                return
            }
        case 6:
            if Self.equals(name, "cookie") {
                // RFC 9113 §8.2.3: crumbs are joined with "; " into one field for HTTP/1.1.
                if !cookie.isEmpty {
                    cookie.append(ASCII.semicolon)
                    cookie.append(ASCII.sp)
                }
                cookie.append(contentsOf: value)
                return
            }
            // The 100-continue handshake is lb's with the client (an interim HEADERS once a backend is ready):
            // the backend is not asked to wait for the body.
            if Self.equals(name, "expect") {
                expectsContinue = HTTPSyntax.equalsLowercase(
                    value.assumingMemoryBound(to: UInt8.self), 0..<value.count, "100-continue")
                return
            }
        case 7, 10, 16, 17:
            // RFC 9113 §8.2.2: connection-specific fields make the request malformed.
            if Self.equals(name, "connection") || Self.equals(name, "keep-alive")
                || Self.equals(name, "proxy-connection") || Self.equals(name, "transfer-encoding")
                || Self.equals(name, "upgrade")
            {
                return fail(.malformed)
            }
        case 14:
            if Self.equals(name, "content-length") {
                var n: UInt64 = 0
                if sawContentLength || value.isEmpty || value.count > 19 { return fail(.malformed) }
                for b in value {
                    guard b >= 0x30 && b <= 0x39 else { return fail(.malformed) }
                    n = n * 10 + UInt64(b - 0x30)
                }
                sawContentLength = true
                contentLength = n
            }
        default:
            break
        }
        let start = linesUsed, end = start + name.count + value.count + 4
        if end > 1 << 20 { return fail(.status(431)) }
        if end > lines.count { lines.append(contentsOf: repeatElement(0, count: max(end - lines.count, lines.count))) }
        lines.withUnsafeMutableBytes { b in
            let colon = start + name.count
            (b.baseAddress! + start).copyMemory(from: name.baseAddress!, byteCount: name.count)
            b[colon] = ASCII.colon
            b[colon + 1] = ASCII.sp
            if !value.isEmpty { (b.baseAddress! + colon + 2).copyMemory(from: value.baseAddress!, byteCount: value.count) }
            b[end - 2] = ASCII.cr
            b[end - 1] = ASCII.lf
        }
        linesUsed = end
        lineCount += 1
    }

    /// Ends the header block. `hasBody`: the HEADERS frame did not end the stream, so DATA follows (framed
    /// for HTTP/1.1 by the Content-Length the request gave, or chunked). On success `head` is the parsed
    /// HTTP/1.1 head (`parser` does the parsing and keeps it); else the failure.
    public mutating func finish(hasBody: Bool, parser: inout HTTPParser) -> Failure? {
        if let failure { return failure }
        let all = Self.methodBit | Self.schemeBit | Self.pathBit
        if Self.equals(method, "CONNECT") {
            // RFC 9113 §8.5: CONNECT carries only :method and :authority; either way lb does not tunnel.
            return seen & (Self.schemeBit | Self.pathBit) == 0 && seen & Self.authorityBit != 0
                ? .status(405) : .malformed
        }
        guard seen & all == all, !method.isEmpty, !path.isEmpty else { return .malformed }
        for b in method where !HTTPSyntax.isTchar(b) { return .malformed }
        // Origin-form, or "*" for OPTIONS (RFC 9113 §8.3.1).
        if path == [0x2A] {
            if !Self.equals(method, "OPTIONS") { return .malformed }
        } else if path[0] != ASCII.slash {
            return .malformed
        }
        for b in path where !HTTPSyntax.isTargetByte(b) { return .malformed }
        // The authority: :authority, else Host (RFC 9113 §8.3.1); no userinfo, only host characters; when
        // both are present they must name the same thing.
        let haveAuthority = seen & Self.authorityBit != 0
        if haveAuthority && sawHost && authority != host { return .status(400) }
        let target = haveAuthority ? authority : host
        // RFC 9113 §8.3.1: http and https need an authority, and :authority or Host MUST NOT be empty.
        if target.isEmpty { return .status(400) }
        for b in target where !HTTPSyntax.isHostByte(b) || b == 0x40 { return .status(400) }
        if !hasBody, let n = contentLength, n != 0 { return .malformed }

        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: method)
        bytes.append(ASCII.sp)
        bytes.append(contentsOf: path)
        HeadWriter.append(" HTTP/1.1", &bytes)
        let firstLineLength = bytes.count
        HeadWriter.append("\r\nHost: ", &bytes)
        bytes.append(contentsOf: target)
        HeadWriter.append("\r\n", &bytes)
        lines.withUnsafeBytes { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<linesUsed])) }
        var fieldLines = 1 + lineCount
        if !cookie.isEmpty {
            HeadWriter.append("Cookie: ", &bytes)
            bytes.append(contentsOf: cookie)
            HeadWriter.append("\r\n", &bytes)
            fieldLines += 1
        }
        // HTTP/1.1 needs framing the DATA frames gave: chunked when no Content-Length says the length.
        if hasBody && contentLength == nil {
            HeadWriter.append("Transfer-Encoding: chunked\r\n", &bytes)
            fieldLines += 1
        }
        HeadWriter.append("\r\n", &bytes)
        // Already lines of CRLF-terminated fields: the parser checks the limits and parses them, without the
        // line scan bytes from a socket need.
        let event = parser.parseComposedHead(&bytes, firstLineLength: firstLineLength, fieldLines: fieldLines)
        switch event {
        case .head: return nil
        case .error(let e): return .status(e.status)
        case .needMore, .body, .end: return .status(400)
        }
    }

    private mutating func fail(_ f: Failure) { failure = f }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { l in l.count == bytes.count && l.elementsEqual(bytes) }
    }

    private static func equals(_ bytes: [UInt8], _ literal: StaticString) -> Bool {
        bytes.withUnsafeBytes { equals($0, literal) }
    }
}

/// Which forwarding headers the proxy adds to requests sent to backends.
public struct ForwardingOptions: Sendable, Equatable {
    public var xForwardedFor: Bool
    public var xForwardedProto: Bool
    public var xForwardedHost: Bool
    /// RFC 7239 `Forwarded`.
    public var forwarded: Bool
    public var requestID: Bool

    public init(
        xForwardedFor: Bool = true, xForwardedProto: Bool = true, xForwardedHost: Bool = true,
        forwarded: Bool = false, requestID: Bool = true
    ) {
        self.xForwardedFor = xForwardedFor
        self.xForwardedProto = xForwardedProto
        self.xForwardedHost = xForwardedHost
        self.forwarded = forwarded
        self.requestID = requestID
    }

    /// True for a field the proxy writes itself (merged with the client's values) when its option is on, so
    /// the client's own lines of it are not copied.
    func replaces(_ known: KnownHeader) -> Bool {
        switch known {
        case .xForwardedFor: return xForwardedFor
        case .xForwardedProto: return xForwardedProto
        case .xForwardedHost: return xForwardedHost
        case .forwarded: return forwarded
        default: return false
        }
    }
}

/// Serialises heads for forwarding. Everything is appended to `out`; nothing else is allocated when `out`
/// has enough capacity. Kept field lines are copied byte for byte from the parsed head, whitespace included
/// (consecutive ones with one append); only Host and the forwarding fields are written anew.
public enum HeadWriter {
    /// The request as forwarded to a backend: `METHOD SP target SP HTTP/1.1`, every field except hop-by-hop
    /// ones (Upgrade and `Connection: upgrade` kept when `head.isUpgrade`), `Transfer-Encoding: chunked` when
    /// the body is chunked (the caller re-frames it), Content-Length passed through, then the forwarding
    /// fields per `options`. Several X-Forwarded-For (or Forwarded) fields are merged into one.
    ///
    /// The backend must see the request we routed (RFC 9112 §3.2): an empty target is sent as "/", an
    /// absolute-form target in origin-form with Host set to its authority, and a request without Host (HTTP/1.0)
    /// gets one (empty when there is no authority). Content codings before the final chunked are kept
    /// (`Transfer-Encoding: gzip, chunked`), coding parameters are dropped.
    ///
    /// `secure`: the client connection is TLS, so `X-Forwarded-Proto` and `Forwarded` say `https`.
    ///
    /// `owned`: a field only the proxy sets (a client certificate's subject): the client's fields of that name
    /// are dropped and `owned.line`, if not empty, is added last.
    ///
    /// Returns the range (in `head.bytes`) of the client's X-Request-ID when one was kept, nil when
    /// `requestID` was added (formatted as 16 lowercase hex digits) or request ids are disabled.
    @discardableResult
    public static func writeRequest(
        _ head: HTTPHead, clientAddress: UnsafeRawBufferPointer, requestID: UInt64, options: ForwardingOptions,
        secure: Bool = false, owned: OwnedRequestField? = nil, into out: inout [UInt8]
    ) -> Range<Int>? {
        head.bytes.withUnsafeBufferPointer { p in
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[head.methodRange]))
            out.append(ASCII.sp)
            appendOriginTarget(p, head, &out)
            append(" HTTP/1.1\r\n", &out)
            var sawHost = false
            var run = LineRun()
            for f in head.fields {
                if f.isHopByHop && !(head.isUpgrade && f.known == .upgrade) {
                    run.flush(before: f, p, &out)
                    continue
                }
                if f.known == .host {
                    sawHost = true
                    run.flush(before: f, p, &out)
                    appendHost(p, head, &out)
                } else if options.replaces(f.known) {
                    run.flush(before: f, p, &out)
                } else if let owned, f.known == .other, owned.matches(p, f.name) {
                    // An owned name is never a known header (`OwnedRequestField.problem(withName:)`).
                    run.flush(before: f, p, &out)
                } else {
                    run.keep(f)
                }
            }
            run.flushAtEnd(p, &out)
            if !sawHost { appendHost(p, head, &out) }
            if head.isUpgrade { append("Connection: upgrade\r\n", &out) }
            if head.framing == .chunked { appendTransferEncoding(p, head, &out) }
            if options.xForwardedFor {
                append("X-Forwarded-For: ", &out)
                appendMerged(p, head, .xForwardedFor, &out)
                out.append(contentsOf: clientAddress)
                append("\r\n", &out)
            }
            if options.xForwardedProto {
                append(secure ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n", &out)
            }
            if options.xForwardedHost, let host = head.host, !host.isEmpty {
                append("X-Forwarded-Host: ", &out)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: p[host]))
                append("\r\n", &out)
            }
            if options.forwarded { appendForwarded(p, head, clientAddress, secure: secure, &out) }
            var kept: Range<Int>? = nil
            if options.requestID {
                kept = head.value(.xRequestID)
                if kept == nil {
                    append("X-Request-ID: ", &out)
                    for shift in stride(from: 60, through: 0, by: -4) { out.append(hexDigit(UInt8((requestID >> UInt64(shift)) & 0xF))) }
                    append("\r\n", &out)
                }
            }
            if let owned { out.append(contentsOf: owned.line) }
            append("\r\n", &out)
            return kept
        }
    }

    /// The response as sent to the client: `HTTP/1.1 SP status SP reason`, fields minus hop-by-hop (Upgrade
    /// and `Connection: upgrade` kept for 101), `Transfer-Encoding: chunked` when `chunked` (the caller
    /// re-frames), then `Connection: close` when !keepAlive, or `Connection: keep-alive` for a keep-alive
    /// HTTP/1.0 client.
    public static func writeResponse(
        _ head: HTTPHead, keepAlive: Bool, clientVersionMinor: Int, chunked: Bool, into out: inout [UInt8]
    ) {
        let upgrade = head.status == 101
        append("HTTP/1.1 ", &out)
        appendDecimal(head.status, &out)
        out.append(ASCII.sp)
        head.bytes.withUnsafeBufferPointer { p in
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[head.reason]))
            append("\r\n", &out)
            var run = LineRun()
            for f in head.fields {
                if f.isHopByHop && !(upgrade && f.known == .upgrade) {
                    run.flush(before: f, p, &out)
                } else {
                    run.keep(f)
                }
            }
            run.flushAtEnd(p, &out)
        }
        if chunked { append("Transfer-Encoding: chunked\r\n", &out) }
        if upgrade {
            append("Connection: upgrade\r\n", &out)
        } else if !keepAlive {
            append("Connection: close\r\n", &out)
        } else if clientVersionMinor == 0 {
            append("Connection: keep-alive\r\n", &out)
        }
        append("\r\n", &out)
    }

    /// "<size in lowercase hex>\r\n".
    @inlinable
    public static func writeChunkHeader(_ size: Int, into out: inout [UInt8]) {
        precondition(size >= 0, "chunk size must not be negative")
        var shift = 60
        while shift > 0 && (size >> shift) & 0xF == 0 { shift -= 4 }
        while shift >= 0 {
            out.append(hexDigit(UInt8((size >> shift) & 0xF)))
            shift -= 4
        }
        append("\r\n", &out)
    }

    /// Follows each chunk's data.
    public static let chunkTrailer: [UInt8] = Array("\r\n".utf8)
    /// The last chunk and the empty trailer section.
    public static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    /// `bytes` as one chunk of a chunked body: size line, data, CRLF. Empty input writes nothing (an empty
    /// chunk would end the body).
    @inlinable
    public static func appendChunk(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        if bytes.isEmpty { return }
        writeChunkHeader(bytes.count, into: &out)
        out.append(contentsOf: bytes)
        append("\r\n", &out)
    }

    /// A complete small response generated by the proxy itself (errors). `extraHeader` is one field line
    /// without CRLF, e.g. "Retry-After: 1".
    public static func writeSimpleResponse(
        status: Int, reason: StaticString, body: StaticString, close: Bool, extraHeader: StaticString? = nil,
        into out: inout [UInt8]
    ) {
        append("HTTP/1.1 ", &out)
        appendDecimal(status, &out)
        out.append(ASCII.sp)
        append(reason, &out)
        append("\r\nContent-Type: text/plain\r\nContent-Length: ", &out)
        appendDecimal(body.utf8CodeUnitCount, &out)
        append(close ? "\r\nConnection: close\r\n" : "\r\nConnection: keep-alive\r\n", &out)
        if let extraHeader {
            append(extraHeader, &out)
            append("\r\n", &out)
        }
        append("\r\n", &out)
        append(body, &out)
    }

    // MARK: Helpers (also the number formatting of the access log)

    @inlinable @inline(__always)
    public static func append(_ s: StaticString, _ out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    /// The lowercase hex digit of `v` (0...15).
    @inlinable @inline(__always)
    public static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x61 + v - 10 }

    /// `value` in decimal, no leading zeros.
    @inlinable
    public static func appendDecimal(_ value: Int, _ out: inout [UInt8]) {
        precondition(value >= 0, "only non-negative numbers are written")
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(UInt8(0x30 + rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Copies kept field lines as received, a run of consecutive ones with one append. Field lines are
    /// contiguous in `HTTPHead.bytes` (start line, field lines, empty line; obs-fold is rejected), so a run
    /// is one range: from the first kept field's name to the start of the first line not in the run.
    private struct LineRun {
        private var start = -1

        mutating func keep(_ f: HTTPHeaderField) {
            if start < 0 { start = f.name.lowerBound }
        }

        /// Ends the run before `f`'s line (which is dropped or rewritten).
        mutating func flush(before f: HTTPHeaderField, _ p: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8]) {
            flush(upTo: f.name.lowerBound, p, &out)
        }

        /// Ends the run at the empty line that closes the head.
        mutating func flushAtEnd(_ p: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8]) {
            flush(upTo: p.count - 2, p, &out)
        }

        private mutating func flush(upTo end: Int, _ p: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8]) {
            guard start >= 0 else { return }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<end]))
            start = -1
        }
    }

    /// The target in the form a backend gets: origin-form for absolute-form, "/" for an empty path, and "*"
    /// for OPTIONS to an absolute URI without path or query (RFC 9112 §3.2.4).
    private static func appendOriginTarget(_ p: UnsafeBufferPointer<UInt8>, _ head: HTTPHead, _ out: inout [UInt8]) {
        var path = head.target
        if let authority = head.targetAuthority {
            path = authority.upperBound..<head.target.upperBound
            if head.method == .options && path.isEmpty {
                out.append(0x2A)
                return
            }
        }
        // "http://a" and "http://a?q" have an empty path; so has an empty target.
        if path.isEmpty || (head.targetAuthority != nil && p[path.lowerBound] != ASCII.slash) {
            out.append(ASCII.slash)
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: p[path]))
    }

    /// `Host: <head.host>`: the Host value, replaced by an absolute-form authority; empty when neither exists.
    private static func appendHost(_ p: UnsafeBufferPointer<UInt8>, _ head: HTTPHead, _ out: inout [UInt8]) {
        append("Host: ", &out)
        if let host = head.host { out.append(contentsOf: UnsafeBufferPointer(rebasing: p[host])) }
        append("\r\n", &out)
    }

    /// `Transfer-Encoding: <codings before chunked>, chunked`, names only (the parser validated the list).
    private static func appendTransferEncoding(
        _ p: UnsafeBufferPointer<UInt8>, _ head: HTTPHead, _ out: inout [UInt8]
    ) {
        append("Transfer-Encoding: ", &out)
        for f in head.fields where f.known == .transferEncoding {
            HTTPSyntax.forEachListElement(p, f.value) { element in
                if let name = HTTPSyntax.transferCodingName(p, element),
                    !HTTPSyntax.equalsLowercase(p, name, "chunked")
                {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: p[name]))
                    append(", ", &out)
                }
                return true
            }
        }
        append("chunked\r\n", &out)
    }

    /// The values of every `known` field, each followed by ", " (so the caller appends its own element).
    private static func appendMerged(_ p: UnsafeBufferPointer<UInt8>, _ head: HTTPHead, _ known: KnownHeader, _ out: inout [UInt8]) {
        for f in head.fields where f.known == known && !f.value.isEmpty {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[f.value]))
            append(", ", &out)
        }
    }

    /// RFC 7239 §4: `for=<client>;host=<host>;proto=http`; an IPv6 address is bracketed and quoted, a host
    /// that is not a token (e.g. "example.com:8080") is quoted.
    private static func appendForwarded(
        _ p: UnsafeBufferPointer<UInt8>, _ head: HTTPHead, _ client: UnsafeRawBufferPointer, secure: Bool,
        _ out: inout [UInt8]
    ) {
        append("Forwarded: ", &out)
        appendMerged(p, head, .forwarded, &out)
        append("for=", &out)
        if client.contains(ASCII.colon) {
            append("\"[", &out)
            out.append(contentsOf: client)
            append("]\"", &out)
        } else {
            out.append(contentsOf: client)
        }
        if let host = head.host, !host.isEmpty {
            append(";host=", &out)
            let token = host.allSatisfy { HTTPSyntax.isTchar(p[$0]) }
            if !token { out.append(ASCII.dquote) }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[host]))  // host bytes never include '"' or '\'
            if !token { out.append(ASCII.dquote) }
        }
        append(secure ? ";proto=https\r\n" : ";proto=http\r\n", &out)
    }
}

import LBHTTP

/// Invariants of a head the parser accepted, and of the head the proxy forwards for it.
enum HeadChecks {
    static func validate(_ h: HTTPHead, _ config: FuzzConfig) {
        let n = h.bytes.count
        func inBounds(_ r: Range<Int>) -> Bool { r.lowerBound >= 0 && r.upperBound <= n }
        check(n >= 4 && Array(h.bytes[(n - 4)...]) == [13, 10, 13, 10], "head does not end in CRLF CRLF")
        for f in h.fields {
            check(inBounds(f.name) && !f.name.isEmpty && inBounds(f.value), "field ranges out of the head")
        }
        if let host = h.host { check(inBounds(host), "host out of the head") }
        switch h.framing {
        case .chunked:
            check(h.versionMinor == 1, "chunked framing in HTTP/1.0")
            check(!h.fields.contains { $0.known == .contentLength }, "chunked framing with Content-Length")
        case .contentLength:
            check(h.fields.filter { $0.known == .contentLength }.count == 1, "Content-Length framing, not one CL")
            check(!h.fields.contains { $0.known == .transferEncoding }, "Content-Length framing with TE")
        case .none, .closeDelimited:
            break
        }
        if config.kind == .request {
            check(inBounds(h.methodRange) && inBounds(h.target), "start line ranges out of the head")
            check(h.framing != .closeDelimited, "close-delimited request")
            check(h.versionMinor == 0 || h.host != nil, "HTTP/1.1 request without host")
            roundTripRequest(h)
        } else {
            check(inBounds(h.reason) && h.status >= 100 && h.status <= 999, "status line out of range")
            roundTripResponse(h, config)
        }
    }

    static let generous = HTTPLimits(maxRequestLine: 1 << 20, maxHeaderBytes: 1 << 20, maxHeaderCount: 1000)

    /// What the backend parses from the forwarded head must frame the body as we did, and name the host
    /// we routed on (RFC 9112 §3.2: HTTP/1.1 needs a Host; an absolute-form target is sent in origin-form).
    static func roundTripRequest(_ h: HTTPHead) {
        var out: [UInt8] = []
        let client: [UInt8] = Array("192.0.2.1".utf8)
        client.withUnsafeBytes {
            _ = HeadWriter.writeRequest(h, clientAddress: $0, requestID: 7, options: ForwardingOptions(), into: &out)
        }
        let forwarded = reparse(out, .request, .get)
        guard let f = forwarded else { return check(false, "forwarded request does not parse: \(text(out))") }
        check(f.framing == h.framing, "forwarded framing \(f.framing) != \(h.framing): \(text(out))")
        check(f.versionMinor == 1, "forwarded version")
        let routed = h.host.map { Array(h.bytes[$0]) } ?? []
        check(f.host.map { Array(f.bytes[$0]) } == routed, "forwarded host differs: \(text(out))")
        check(f.method == h.method && f.bytes[f.methodRange] == h.bytes[h.methodRange], "forwarded method differs")
    }

    /// The response as sent to the client (re-framed as chunked when it had a chunked body) frames alike.
    static func roundTripResponse(_ h: HTTPHead, _ config: FuzzConfig) {
        switch h.framing {
        case .chunked, .contentLength: break
        case .none, .closeDelimited: return  // nothing to compare: the proxy decides how to frame these
        }
        var out: [UInt8] = []
        HeadWriter.writeResponse(h, keepAlive: true, clientVersionMinor: 1, chunked: h.framing == .chunked, into: &out)
        guard let f = reparse(out, .response, config.method) else {
            return check(false, "forwarded response does not parse: \(text(out))")
        }
        check(f.framing == h.framing && f.status == h.status, "forwarded response framing differs: \(text(out))")
    }

    static func reparse(_ bytes: [UInt8], _ kind: HTTPMessageKind, _ method: HTTPMethod) -> HTTPHead? {
        var p = HTTPParser(kind: kind, limits: generous)
        if kind == .response { p.expectResponse(to: method) }
        var pos = 0
        let e = bytes.withUnsafeBytes { p.next($0, &pos) }
        guard e == .head else { return nil }
        check(pos == bytes.count, "forwarded head has trailing bytes")
        return p.head
    }

    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self).debugDescription }
}

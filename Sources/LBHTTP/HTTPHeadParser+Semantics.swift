/// The field semantics the proxy relies on: framing (Content-Length / Transfer-Encoding), Host, Connection
/// (keep-alive, hop-by-hop marking, upgrade) and Expect. See the decisions listed on `HTTPHeadParser`.
extension HTTPHeadParser {
    func applySemantics(_ p: UnsafeBufferPointer<UInt8>, _ head: inout HTTPHead) -> HTTPParseError? {
        var contentLengthFields = 0
        var contentLength: UInt64? = nil
        var transferEncodingFields = 0
        var codings = 0
        var chunkedCodings = 0
        var lastCodingIsChunked = false
        var invalidCoding = false
        var unknownCoding = false
        var underscoreFramingName = false
        var hostFields = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false
        var connectionNamesOthers = false
        var hasUpgradeField = false

        for f in head.fields {
            switch f.known {
            case .contentLength:
                contentLengthFields += 1
                contentLength = Self.parseContentLength(p, f.value)
            case .transferEncoding:
                transferEncodingFields += 1
                HTTPSyntax.forEachListElement(p, f.value) { element in
                    codings += 1
                    guard let name = HTTPSyntax.transferCodingName(p, element) else {
                        invalidCoding = true
                        return false
                    }
                    lastCodingIsChunked = HTTPSyntax.equalsLowercase(p, name, "chunked")
                    if lastCodingIsChunked {
                        chunkedCodings += 1
                    } else if !Self.isKnownContentCoding(p, name) {
                        unknownCoding = true
                    }
                    return true
                }
            case .host:
                hostFields += 1
                for i in f.value where !HTTPSyntax.isHostByte(p[i]) { return .invalidHost }
                head.host = f.value
            case .connection:
                let ok = HTTPSyntax.forEachListElement(p, f.value) { token in
                    guard HTTPSyntax.isToken(p, token) else { return false }
                    if HTTPSyntax.equalsLowercase(p, token, "close") {
                        connectionClose = true
                    } else if HTTPSyntax.equalsLowercase(p, token, "keep-alive") {
                        connectionKeepAlive = true
                    } else if HTTPSyntax.equalsLowercase(p, token, "upgrade") {
                        connectionUpgrade = true
                    } else {
                        connectionNamesOthers = true
                    }
                    return true
                }
                if !ok { return .invalidConnection }
            case .upgrade:
                hasUpgradeField = true
            case .expect:
                if kind == .request && head.versionMinor == 1
                    && HTTPSyntax.equalsLowercase(p, f.value, "100-continue")
                {
                    head.expectContinue = true
                }
            case .other:
                if kind == .request && Self.isUnderscoreFramingName(p, f.name) { underscoreFramingName = true }
            default:
                break
            }
        }

        // Framing first: these are the smuggling-relevant defects.
        if underscoreFramingName { return .underscoreFramingHeader }
        if transferEncodingFields > 0 {
            if contentLengthFields > 0 { return .bothContentLengthAndTransferEncoding }
            if head.versionMinor == 0 { return .transferEncodingInHTTP10 }
            if invalidCoding || codings == 0 { return .invalidTransferEncoding }
            if !lastCodingIsChunked { return .transferEncodingNotChunked }
            if chunkedCodings != 1 { return .chunkedAppliedTwice }
            if unknownCoding { return .unsupportedTransferCoding }
            // Responses: the proxy re-frames the body and announces only chunked (nothing at all to an
            // HTTP/1.0 client), so a coding before chunked would be silently lost → bad upstream response.
            if kind == .response && codings != 1 { return .unsupportedTransferCoding }
            head.framing = .chunked
        } else if contentLengthFields > 0 {
            if contentLengthFields > 1 { return .multipleContentLength }
            guard let n = contentLength else { return .invalidContentLength }
            if kind == .request, let max = limits.maxBodyBytes, n > UInt64(max) { return .bodyTooLarge }
            head.framing = .contentLength(n)
        } else {
            head.framing = kind == .request ? .none : .closeDelimited
        }

        if kind == .request {
            if hostFields > 1 { return .multipleHost }
            if hostFields == 0 && head.versionMinor == 1 { return .missingHost }
            if let authority = head.targetAuthority { head.host = authority }
            head.isUpgrade = connectionUpgrade && hasUpgradeField
        } else {
            let s = head.status
            if s == 101 || (requestMethod == .connect && s >= 200 && s < 300) {
                head.isUpgrade = s == 101
                head.framing = .none
            } else if requestMethod == .head || s < 200 || s == 204 || s == 304 {
                head.framing = .none
            }
        }

        head.keepAlive = head.versionMinor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        if head.framing == .closeDelimited { head.keepAlive = false }

        if connectionNamesOthers { markConnectionNamedFields(p, &head) }
        return nil
    }

    /// Codings that may precede the final chunked: the registered ones (RFC 9110 §8.4.1, IANA HTTP Content
    /// Coding registry) and identity (deprecated, still sent). The proxy does not decode them: they are
    /// forwarded to the backend, so only names a backend can be expected to know pass.
    static func isKnownContentCoding(_ p: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> Bool {
        for known: StaticString in ["gzip", "x-gzip", "deflate", "compress", "x-compress", "identity", "br", "zstd"]
        where HTTPSyntax.equalsLowercase(p, name, known) {
            return true
        }
        return false
    }

    /// "Content_Length", "transfer_encoding" ...: CGI-style backends map "_" to "-" (HTTP_CONTENT_LENGTH) and
    /// would read these as the framing header we did not frame by; nginx drops such fields by default.
    static func isUnderscoreFramingName(_ p: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> Bool {
        guard name.count == 14 || name.count == 17, name.contains(where: { p[$0] == 0x5F }) else { return false }
        func matches(_ literal: StaticString) -> Bool {
            literal.withUTF8Buffer { lit in
                guard lit.count == name.count else { return false }
                return zip(name, lit).allSatisfy { i, c in
                    let b = HTTPSyntax.lower(p[i])
                    return b == c || (b == 0x5F && c == 0x2D)
                }
            }
        }
        return matches("content-length") || matches("transfer-encoding")
    }

    /// 1*DIGIT, at most Int64.max; nil otherwise (signs, spaces, lists, hex, overflow).
    static func parseContentLength(_ p: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> UInt64? {
        if r.isEmpty { return nil }
        var n: UInt64 = 0
        for i in r {
            let b = p[i]
            guard b >= 0x30 && b <= 0x39 else { return nil }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            if o1 || o2 || s > UInt64(Int64.max) { return nil }
            n = s
        }
        return n
    }

    /// RFC 9110 §7.6.1: fields named in Connection are hop-by-hop. Quadratic in the worst case but bounded
    /// by maxHeaderCount × (Connection tokens); Host and Content-Length are exempt.
    private func markConnectionNamedFields(_ p: UnsafeBufferPointer<UInt8>, _ head: inout HTTPHead) {
        let fieldCount = head.fields.count
        for c in 0..<fieldCount where head.fields[c].known == .connection {
            HTTPSyntax.forEachListElement(p, head.fields[c].value) { token in
                for k in 0..<fieldCount {
                    let f = head.fields[k]
                    if f.isHopByHop || f.known == .host || f.known == .contentLength { continue }
                    if HTTPSyntax.equalsIgnoringCase(p, f.name, token) { head.fields[k].isHopByHop = true }
                }
                return true
            }
        }
    }
}

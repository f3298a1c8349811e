/// Parses and validates a complete head (start line through CRLF CRLF, as collected by `HTTPLineAccumulator`)
/// in one pass, and decides the message framing. Pure function of the bytes, the message kind and, for
/// responses, the request method.
///
/// Decisions (RFC 9112 / RFC 9110), documented here once:
/// - HTTP/1.x with x > 1 is treated as HTTP/1.1 (RFC 9110 §2.5) and reported as versionMinor 1;
///   HTTP/0.x and HTTP/2+ → 505; a request line without a version (HTTP/0.9) → 400.
/// - Transfer-Encoding: framing is chunked when `chunked` is the final coding and appears exactly once
///   across all TE fields (empty list elements ignored). Each element is `token *(; parameter)`, parameters
///   read loosely and ignored (`chunked;custom_param;` is chunked); quotes, CTLs or obs-text → 400. Final
///   coding not chunked → 400 (the length cannot be determined, RFC 9112 §6.3); chunked twice → 400 (RFC
///   9112 §7); codings before chunked must be known content codings (`gzip, chunked`: forwarded to the
///   backend as end-to-end content), an unknown one → 501 (RFC 9112 §6.1). Responses get the same checks
///   (rejected, not treated as close-delimited: safer), and only `chunked` alone: the proxy re-frames a
///   response and could not pass other codings on. TE in an HTTP/1.0 message → 400.
/// - Requests: a field named like a framing header with "_" for "-" (Content_Length) → 400 (CGI mapping).
/// - Request-target: empty (= "/"), origin-, absolute-, authority- (CONNECT), asterisk-form (OPTIONS);
///   obs-text allowed. An absolute-form authority overrides Host as `head.host` (RFC 9112 §3.2.2).
/// - Content-Length: exactly one field, 1*DIGIT, at most Int64.max. Lists, even "42, 42", → 400.
/// - Host: HTTP/1.1 requests need exactly one; an HTTP/1.0 request may have none but not several.
/// - Naming Host or Content-Length in Connection does not make them hop-by-hop.
struct HTTPHeadParser {
    let kind: HTTPMessageKind
    let limits: HTTPLimits
    /// Responses: the method of the request being answered.
    let requestMethod: HTTPMethod

    func parse(_ p: UnsafeBufferPointer<UInt8>, into head: inout HTTPHead) -> HTTPParseError? {
        // The accumulator guarantees: every line ends in CRLF, no bare CR/LF, the block ends in CRLF CRLF.
        let lineEnd = Self.findCR(p, from: 0)
        if let e = kind == .request ? parseRequestLine(p, lineEnd, &head) : parseStatusLine(p, lineEnd, &head) {
            return e
        }
        var i = lineEnd + 2
        while true {
            let e = Self.findCR(p, from: i)
            if e == i { break }  // the empty line
            switch Self.parseFieldLine(p, i..<e) {
            case .success(let f): head.fields.append(f)
            case .failure(let err): return err
            }
            i = e + 2
        }
        return applySemantics(p, &head)
    }

    static func findCR(_ p: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
        var i = from
        while p[i] != ASCII.cr { i += 1 }
        return i
    }

    // MARK: Start lines

    private func parseRequestLine(_ p: UnsafeBufferPointer<UInt8>, _ end: Int, _ head: inout HTTPHead) -> HTTPParseError? {
        var i = 0
        while i < end && p[i] != ASCII.sp {
            guard HTTPSyntax.isTchar(p[i]) else { return .invalidMethod }
            i += 1
        }
        if i == 0 { return .invalidMethod }
        if i == end { return .invalidRequestLine }
        head.methodRange = 0..<i
        head.method = Self.method(p, 0..<i)
        i += 1
        let targetStart = i
        while i < end && p[i] != ASCII.sp { i += 1 }
        head.target = targetStart..<i
        if i == end { return .missingVersion }
        if let e = parseVersion(p, (i + 1)..<end, &head) { return e }
        return validateTarget(p, &head)
    }

    private func parseStatusLine(_ p: UnsafeBufferPointer<UInt8>, _ end: Int, _ head: inout HTTPHead) -> HTTPParseError? {
        guard end >= 12, p[8] == ASCII.sp else { return .invalidStatusLine }
        if let e = parseVersion(p, 0..<8, &head) { return e == .unsupportedVersion ? e : .invalidStatusLine }
        var status = 0
        for k in 9..<12 {
            guard p[k] >= 0x30 && p[k] <= 0x39 else { return .invalidStatusLine }
            status = status * 10 + Int(p[k] - 0x30)
        }
        guard status >= 100 else { return .invalidStatusLine }
        head.status = status
        // Lenient: "HTTP/1.1 200" without the SP before an empty reason.
        if end == 12 {
            head.reason = 12..<12
            return nil
        }
        guard p[12] == ASCII.sp else { return .invalidStatusLine }
        for k in 13..<end where !HTTPSyntax.isFieldValueByte(p[k]) { return .invalidStatusLine }
        head.reason = 13..<end
        return nil
    }

    /// Exactly "HTTP/" DIGIT "." DIGIT (case-sensitive, RFC 9112 §2.3).
    private func parseVersion(_ p: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, _ head: inout HTTPHead) -> HTTPParseError? {
        guard r.count == 8 else { return .invalidVersion }
        let s = r.lowerBound
        guard p[s] == 0x48, p[s + 1] == 0x54, p[s + 2] == 0x54, p[s + 3] == 0x50, p[s + 4] == ASCII.slash,
            p[s + 6] == 0x2E, p[s + 5] >= 0x30, p[s + 5] <= 0x39, p[s + 7] >= 0x30, p[s + 7] <= 0x39
        else { return .invalidVersion }
        let major = p[s + 5] - 0x30
        let minor = p[s + 7] - 0x30
        guard major == 1 else { return .unsupportedVersion }
        head.versionMinor = minor == 0 ? 0 : 1
        return nil
    }

    private static func method(_ p: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> HTTPMethod {
        // Methods are case-sensitive; compare exactly.
        func eq(_ s: StaticString) -> Bool {
            s.withUTF8Buffer { lit in
                lit.count == r.count && zip(r, lit).allSatisfy { p[$0.0] == $0.1 }
            }
        }
        switch r.count {
        case 3: return eq("GET") ? .get : eq("PUT") ? .put : .other
        case 4: return eq("HEAD") ? .head : eq("POST") ? .post : .other
        case 5: return eq("PATCH") ? .patch : eq("TRACE") ? .trace : .other
        case 6: return eq("DELETE") ? .delete : .other
        case 7: return eq("OPTIONS") ? .options : eq("CONNECT") ? .connect : .other
        default: return .other
        }
    }

    /// RFC 9112 §3.2: origin-form ("/..."), absolute-form ("http://..." / "https://..."), authority-form only
    /// for CONNECT, asterisk-form only for OPTIONS. Visible ASCII and obs-text are accepted (no CTL, SP, DEL).
    /// An empty target is an empty path, equivalent to "/" (RFC 9110 §4.2.3); the writer forwards "/".
    /// absolute-form: the authority must be a non-empty uri-host [":" port] (userinfo → 400, RFC 9110
    /// §4.2.4); it is recorded in `targetAuthority`.
    private func validateTarget(_ p: UnsafeBufferPointer<UInt8>, _ head: inout HTTPHead) -> HTTPParseError? {
        let t = head.target
        for i in t where !HTTPSyntax.isTargetByte(p[i]) { return .invalidTarget }
        if t.isEmpty { return head.method == .connect ? .invalidTarget : nil }
        if head.method == .connect {
            // authority-form: host ":" port, nothing that belongs to a path, query or userinfo.
            var sawColon = false
            for i in t {
                if p[i] == ASCII.colon { sawColon = true } else if !HTTPSyntax.isHostByte(p[i]) { return .invalidTarget }
            }
            return sawColon ? nil : .invalidTarget
        }
        if p[t.lowerBound] == ASCII.slash { return nil }
        if t.count == 1 && p[t.lowerBound] == 0x2A { return head.method == .options ? nil : .invalidTarget }
        let scheme = Self.hasPrefixLowercase(p, t, "http://") ? 7 : Self.hasPrefixLowercase(p, t, "https://") ? 8 : 0
        if scheme == 0 { return .invalidTarget }
        let start = t.lowerBound + scheme
        var end = start
        while end < t.upperBound && p[end] != ASCII.slash && p[end] != 0x3F && p[end] != 0x23 {  // / ? #
            guard HTTPSyntax.isHostByte(p[end]) else { return .invalidTarget }
            end += 1
        }
        if end == start { return .invalidTarget }
        head.targetAuthority = start..<end
        return nil
    }

    private static func hasPrefixLowercase(_ p: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, _ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard r.count > n else { return false }
        return HTTPSyntax.equalsLowercase(p, r.lowerBound..<(r.lowerBound + n), s)
    }

    // MARK: Field lines

    /// field-line = field-name ":" OWS field-value OWS (RFC 9112 §5). Shared with trailer validation.
    static func parseFieldLine(_ p: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) -> Result<HTTPHeaderField, HTTPParseError> {
        if line.isEmpty { return .failure(.emptyFieldName) }
        if HTTPSyntax.isOWS(p[line.lowerBound]) { return .failure(.obsFold) }
        var i = line.lowerBound
        while i < line.upperBound && p[i] != ASCII.colon {
            let b = p[i]
            if !HTTPSyntax.isTchar(b) {
                guard HTTPSyntax.isOWS(b) else { return .failure(.invalidFieldName) }
                // "Name : v" (RFC 9112 §5.1: MUST reject) versus whitespace inside a name ("Bad Name: v").
                var k = i
                while k < line.upperBound && HTTPSyntax.isOWS(p[k]) { k += 1 }
                let beforeColon = k < line.upperBound && p[k] == ASCII.colon
                return .failure(beforeColon ? .whitespaceBeforeColon : .invalidFieldName)
            }
            i += 1
        }
        if i == line.upperBound { return .failure(.invalidFieldName) }  // no colon
        if i == line.lowerBound { return .failure(.emptyFieldName) }
        let name = line.lowerBound..<i
        if !HTTPSyntax.allFieldValueBytes(p, (i + 1)..<line.upperBound) { return .failure(.invalidFieldValue) }
        let value = HTTPSyntax.trimOWS(p, (i + 1)..<line.upperBound)
        let known = KnownHeader.lookup(p, name)
        return .success(HTTPHeaderField(name: name, value: value, known: known, isHopByHop: known.isStandardHopByHop))
    }
}

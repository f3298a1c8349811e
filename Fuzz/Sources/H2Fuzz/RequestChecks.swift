import LBHTTP

/// Invariants of the HTTP/1.1 head an HTTP/2 request was translated into (`H2RequestHead.finish`): its framing
/// is the one the stream's DATA needs, parsing the same bytes off a socket gives the same head, and what lb
/// forwards to a backend frames the body alike and names the same host.
enum RequestChecks {
    static func validate(_ head: HTTPHead, contentLength: UInt64?, hasBody: Bool, limits: HTTPLimits) {
        let expected: HTTPFraming
        if hasBody {
            expected = contentLength.map { .contentLength($0) } ?? .chunked
        } else {
            expected = contentLength == nil ? .none : .contentLength(0)
        }
        check(head.framing == expected, "framing \(head.framing), expected \(expected): \(text(head.bytes))")
        check(head.host != nil && head.versionMinor == 1, "no host or not HTTP/1.1: \(text(head.bytes))")
        check(!head.isUpgrade && head.method != .connect, "upgrade or CONNECT translated: \(text(head.bytes))")
        let n = head.bytes.count
        check(n >= 4 && Array(head.bytes[(n - 4)...]) == [13, 10, 13, 10], "head does not end in CRLF CRLF")

        // The composed head skips the line scan only: `next` on the same bytes must agree.
        var parser = HTTPParser(kind: .request, limits: limits)
        var pos = 0
        let event = head.bytes.withUnsafeBytes { parser.next($0, &pos) }
        check(
            event == .head && pos == n, "composed head accepted, \(event) at \(pos) off a socket: \(text(head.bytes))")
        let p = parser.head
        check(
            p.method == head.method && p.methodRange == head.methodRange && p.target == head.target
                && p.targetAuthority == head.targetAuthority && p.fields == head.fields && p.framing == head.framing
                && p.host == head.host && p.keepAlive == head.keepAlive && p.expectContinue == head.expectContinue,
            "composed head differs from the same bytes parsed: \(text(head.bytes))")

        var out: [UInt8] = []
        let client: [UInt8] = Array("192.0.2.1".utf8)
        client.withUnsafeBytes {
            _ = HeadWriter.writeRequest(
                head, clientAddress: $0, requestID: 7, options: ForwardingOptions(), secure: true, into: &out)
        }
        var backend = HTTPParser(kind: .request, limits: generous)
        pos = 0
        let forwarded = out.withUnsafeBytes { backend.next($0, &pos) }
        check(forwarded == .head && pos == out.count, "forwarded head does not parse: \(text(out))")
        let f = backend.head
        check(f.framing == head.framing, "forwarded framing \(f.framing) != \(head.framing): \(text(out))")
        let host = f.host.map { Array(f.bytes[$0]) }
        check(host == head.host.map { Array(head.bytes[$0]) }, "forwarded host: \(text(out))")
        check(f.bytes[f.methodRange] == head.bytes[head.methodRange], "forwarded method: \(text(out))")
    }

    static let generous = HTTPLimits(maxRequestLine: 1 << 20, maxHeaderBytes: 1 << 20, maxHeaderCount: 1000)

    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self).debugDescription }
}

import XCTest

@testable import LBHTTP

final class HeadWriterTests: XCTestCase {
    private func parse(_ kind: HTTPMessageKind, _ s: String, method: HTTPMethod = .get) -> HTTPHead {
        var parser = HTTPParser(kind: kind)
        if kind == .response { parser.expectResponse(to: method) }
        let event = bytes(s).withUnsafeBytes { b -> HTTPEvent in
            var pos = 0
            return parser.next(b, &pos)
        }
        XCTAssertEqual(event, .head)
        return parser.head
    }

    private func request(
        _ s: String, client: String = "10.0.0.9", id: UInt64 = 0xabc, options: ForwardingOptions = ForwardingOptions(),
        secure: Bool = false
    ) -> (String, Range<Int>?) {
        let head = parse(.request, s)
        var out: [UInt8] = []
        let kept = Array(client.utf8).withUnsafeBytes {
            HeadWriter.writeRequest(head, clientAddress: $0, requestID: id, options: options, secure: secure, into: &out)
        }
        return (String(decoding: out, as: UTF8.self), kept)
    }

    func testForwardedRequestDropsHopByHopFieldsAndAddsForwardingFields() {
        let (out, kept) = request(
            "get /p?q HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: 5\r\n"
                + "X-Private: s\r\nTE: trailers\r\nProxy-Connection: x\r\nAccept: */*\r\n\r\n")
        XCTAssertEqual(
            out,
            "get /p?q HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.9\r\n"
                + "X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\nX-Request-ID: 0000000000000abc\r\n\r\n")
        XCTAssertNil(kept)
    }

    /// Kept fields are copied line by line as received (runs of them at once): order, spelling and OWS
    /// survive, and every dropped or rewritten field in the middle of a run ends it at the right byte.
    func testKeptFieldLinesAreCopiedVerbatimAroundDroppedAndRewrittenOnes() {
        let options = ForwardingOptions(
            xForwardedFor: false, xForwardedProto: false, xForwardedHost: false, forwarded: false, requestID: false)
        let (out, _) = request(
            "GET / HTTP/1.1\r\nA: 1\r\nconnection: close\r\nb:\t 2 \r\nHOST: h\r\nC:3\r\nKeep-Alive: 1\r\n"
                + "D: 4\r\nE: 5\r\n\r\n", options: options)
        XCTAssertEqual(out, "GET / HTTP/1.1\r\nA: 1\r\nb:\t 2 \r\nHost: h\r\nC:3\r\nD: 4\r\nE: 5\r\n\r\n")
        let response = parse(
            .response, "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B:  2\r\nConnection: keep-alive\r\nX-C: 3 \r\n\r\n")
        var written: [UInt8] = []
        HeadWriter.writeResponse(response, keepAlive: true, clientVersionMinor: 1, chunked: false, into: &written)
        XCTAssertEqual(String(decoding: written, as: UTF8.self), "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B:  2\r\nX-C: 3 \r\n\r\n")
    }

    func testAppendsClientToExistingXForwardedForAndMergesSeveralFields() {
        let (out, _) = request(
            "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n")
        XCTAssertTrue(out.contains("\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9\r\n"), out)
        XCTAssertEqual(out.components(separatedBy: "X-Forwarded-For").count, 2, "exactly one XFF field")
    }

    func testReplacesClientSuppliedProtoAndHost() {
        let (out, _) = request(
            "GET / HTTP/1.1\r\nHost: real\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed\r\n\r\n")
        XCTAssertFalse(out.contains("https"))
        XCTAssertFalse(out.contains("spoofed"))
        XCTAssertTrue(out.contains("X-Forwarded-Proto: http\r\nX-Forwarded-Host: real\r\n"))
    }

    /// A request that arrived over TLS says so to the backend, in both forwarding fields, whatever the client
    /// claimed.
    func testRequestsFromTLSClientsAreForwardedAsHTTPS() {
        var options = ForwardingOptions()
        options.forwarded = true
        let (out, _) = request(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\n\r\n", options: options, secure: true)
        XCTAssertTrue(out.contains("\r\nX-Forwarded-Proto: https\r\n"), out)
        XCTAssertTrue(out.contains(";host=h;proto=https\r\n"), out)
        XCTAssertEqual(out.components(separatedBy: "X-Forwarded-Proto").count, 2, "exactly one field")
        let (plain, _) = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n", options: options)
        XCTAssertTrue(plain.contains("X-Forwarded-Proto: http\r\n") && plain.contains(";proto=http\r\n"), plain)
    }

    func testKeepsClientRequestIDAndReportsIt() {
        let head = parse(.request, "GET / HTTP/1.1\r\nHost: h\r\nX-Request-ID: abc-123\r\n\r\n")
        let (out, kept) = request("GET / HTTP/1.1\r\nHost: h\r\nX-Request-ID: abc-123\r\n\r\n", id: 7)
        XCTAssertTrue(out.contains("X-Request-ID: abc-123\r\n"))
        XCTAssertFalse(out.contains("0000000000000007"))
        XCTAssertEqual(kept.map { head.string($0) }, "abc-123")
    }

    func testGeneratedRequestIDIsSixteenLowercaseHexDigits() {
        let (out, _) = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n", id: 0xDEAD_BEEF_0123_4567)
        XCTAssertTrue(out.contains("X-Request-ID: deadbeef01234567\r\n"), out)
    }

    func testDisabledOptionsLeaveClientFieldsUntouched() {
        let none = ForwardingOptions(
            xForwardedFor: false, xForwardedProto: false, xForwardedHost: false, forwarded: false, requestID: false)
        let s = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nForwarded: for=x\r\n\r\n"
        let (out, _) = request(s, options: none)
        XCTAssertEqual(out, s)
    }

    func testForwardedQuotesIPv6AndNonTokenHosts() {
        let on = ForwardingOptions(forwarded: true)
        let (v4, _) = request("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", options: on)
        XCTAssertTrue(v4.contains("\r\nForwarded: for=10.0.0.9;host=example.com;proto=http\r\n"), v4)
        let (v6, _) = request(
            "GET / HTTP/1.1\r\nHost: example.com:8080\r\nForwarded: for=192.0.2.1\r\n\r\n", client: "2001:db8::1",
            options: on)
        XCTAssertTrue(
            v6.contains("\r\nForwarded: for=192.0.2.1, for=\"[2001:db8::1]\";host=\"example.com:8080\";proto=http\r\n"), v6)
        XCTAssertTrue(v6.contains("X-Forwarded-For: 2001:db8::1\r\n"))
    }

    func testChunkedRequestIsAnnouncedOnceAndContentLengthPassesThrough() {
        let (chunked, _) = request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        XCTAssertEqual(chunked.components(separatedBy: "Transfer-Encoding: chunked\r\n").count, 2)
        let (cl, _) = request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n")
        XCTAssertTrue(cl.contains("\r\nContent-Length: 12\r\n"))
        XCTAssertFalse(cl.contains("Transfer-Encoding"))
    }

    func testEmptyTargetIsForwardedAsSlash() {
        let (out, _) = request("GET  HTTP/1.1\r\nHost: h\r\n\r\n")
        XCTAssertTrue(out.hasPrefix("GET / HTTP/1.1\r\nHost: h\r\n"), out)
    }

    func testObsTextTargetIsForwardedUnchanged() {
        let (out, _) = request("GET /caf\u{E9}?x=\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n")
        XCTAssertTrue(out.hasPrefix("GET /caf\u{E9}?x=\u{E9} HTTP/1.1\r\n"), out)
    }

    func testAbsoluteFormIsForwardedInOriginFormWithItsAuthorityAsHost() {
        let (out, _) = request("GET http://a.example:81/x?y HTTP/1.1\r\nHost: other\r\nAccept: */*\r\n\r\n")
        XCTAssertEqual(
            out,
            "GET /x?y HTTP/1.1\r\nHost: a.example:81\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.9\r\n"
                + "X-Forwarded-Proto: http\r\nX-Forwarded-Host: a.example:81\r\nX-Request-ID: 0000000000000abc\r\n\r\n")
        XCTAssertTrue(request("GET https://a?q HTTP/1.1\r\nHost: a\r\n\r\n").0.hasPrefix("GET /?q HTTP/1.1\r\nHost: a\r\n"))
        XCTAssertTrue(request("OPTIONS http://a HTTP/1.1\r\nHost: a\r\n\r\n").0.hasPrefix("OPTIONS * HTTP/1.1\r\n"))
        XCTAssertTrue(request("OPTIONS http://a?q HTTP/1.1\r\nHost: a\r\n\r\n").0.hasPrefix("OPTIONS /?q HTTP/1.1\r\n"))
    }

    func testHTTP10RequestWithoutHostGetsOneWhenForwardedAsHTTP11() {
        let (bare, _) = request("GET /x HTTP/1.0\r\nAccept: */*\r\n\r\n")
        XCTAssertTrue(bare.hasPrefix("GET /x HTTP/1.1\r\nAccept: */*\r\nHost: \r\n"), bare)
        let (absolute, _) = request("GET http://a.example/x HTTP/1.0\r\n\r\n")
        XCTAssertTrue(absolute.hasPrefix("GET /x HTTP/1.1\r\nHost: a.example\r\n"), absolute)
        XCTAssertEqual(absolute.components(separatedBy: "Host:").count, 3, "one Host plus X-Forwarded-Host")
    }

    func testContentCodingsBeforeChunkedAreForwardedAndParametersDropped() {
        let (out, _) = request(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip ;\r\nTransfer-Encoding: deflate, chunked;x;q=1\r\n\r\n")
        XCTAssertEqual(out.components(separatedBy: "Transfer-Encoding").count, 2, out)
        XCTAssertTrue(out.contains("\r\nTransfer-Encoding: gzip, deflate, chunked\r\n"), out)
        let (plain, _) = request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \t\tchunked;custom_param;\t\r\n\r\n")
        XCTAssertTrue(plain.contains("\r\nTransfer-Encoding: chunked\r\n"), plain)
    }

    /// Fuzzer finding: "GET / HTTP/1.0\r\n\r\n" was forwarded as HTTP/1.1 without Host, which the backend
    /// (and our own parser) rejects. Whatever we accept must reach the backend with the same framing and host.
    func testForwardedHeadReparsesWithTheSameFramingAndHost() throws {
        for s in [
            "GET / HTTP/1.0\r\n\r\n", "GET http://a:1?q HTTP/1.0\r\n\r\n", "GET  HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n", "POST /\u{E9} HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip;x, identity\r\nTransfer-Encoding: chunked;y\r\n\r\n",
        ] {
            let head = parse(.request, s)
            var out: [UInt8] = []
            Array("10.0.0.9".utf8).withUnsafeBytes {
                _ = HeadWriter.writeRequest(head, clientAddress: $0, requestID: 1, options: ForwardingOptions(), into: &out)
            }
            var parser = HTTPParser(kind: .request)
            var pos = 0
            XCTAssertEqual(out.withUnsafeBytes { parser.next($0, &pos) }, .head, s)
            XCTAssertEqual(parser.head.framing, head.framing, s)
            XCTAssertEqual(parser.head.host.map { parser.head.string($0) }, head.host.map { head.string($0) } ?? "", s)
        }
    }

    func testUpgradeRequestKeepsUpgradeAndConnectionUpgrade() {
        let (out, _) = request(
            "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n")
        XCTAssertTrue(out.contains("\r\nUpgrade: websocket\r\n"))
        XCTAssertTrue(out.contains("\r\nConnection: upgrade\r\n"))
        XCTAssertFalse(out.contains("keep-alive"))
        let (plain, _) = request("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n")
        XCTAssertFalse(plain.contains("Upgrade"), "Upgrade without Connection: upgrade is dropped")
    }

    private func response(_ s: String, keepAlive: Bool, minor: Int = 1, chunked: Bool = false) -> String {
        let head = parse(.response, s)
        var out: [UInt8] = []
        HeadWriter.writeResponse(head, keepAlive: keepAlive, clientVersionMinor: minor, chunked: chunked, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testResponseDropsHopByHopAndSetsConnection() {
        let s = "HTTP/1.0 200 Fine\r\nConnection: keep-alive, X-H\r\nKeep-Alive: timeout=5\r\nX-H: 1\r\nContent-Length: 2\r\n\r\n"
        XCTAssertEqual(
            response(s, keepAlive: true), "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\n\r\n")
        XCTAssertEqual(
            response(s, keepAlive: false), "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(
            response(s, keepAlive: true, minor: 0),
            "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n")
    }

    func testResponseChunkedFlagAnnouncesChunkedOnce() {
        let out = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", keepAlive: true, chunked: true)
        XCTAssertEqual(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        let empty = response("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", keepAlive: true)
        XCTAssertEqual(empty, "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n")
    }

    func testSwitchingProtocolsKeepsUpgrade() {
        let out = response(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\r\n",
            keepAlive: true)
        XCTAssertEqual(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\nConnection: upgrade\r\n\r\n")
    }

    func testChunkHeaderIsLowercaseHex() {
        for (n, s) in [(0, "0\r\n"), (1, "1\r\n"), (255, "ff\r\n"), (4096, "1000\r\n"), (Int.max, "7fffffffffffffff\r\n")] {
            var out: [UInt8] = []
            HeadWriter.writeChunkHeader(n, into: &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), s)
        }
        XCTAssertEqual(HeadWriter.chunkTrailer, bytes("\r\n"))
        XCTAssertEqual(HeadWriter.lastChunk, bytes("0\r\n\r\n"))
    }

    func testAppendChunkFramesDataAndSkipsEmptyInput() {
        var out: [UInt8] = []
        bytes("hello, world").withUnsafeBytes { HeadWriter.appendChunk($0, into: &out) }
        [UInt8]().withUnsafeBytes { HeadWriter.appendChunk($0, into: &out) }
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "c\r\nhello, world\r\n")
    }

    func testSimpleResponseIsCompleteAndParsable() throws {
        var out: [UInt8] = []
        HeadWriter.writeSimpleResponse(
            status: 503, reason: "Service Unavailable", body: "no backend\n", close: false, extraHeader: "Retry-After: 1",
            into: &out)
        XCTAssertEqual(
            String(decoding: out, as: UTF8.self),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
                + "Connection: keep-alive\r\nRetry-After: 1\r\n\r\nno backend\n")
        let r = assertFeeds(.response, out)
        XCTAssertEqual(r.body, bytes("no backend\n"))
        var closing: [UInt8] = []
        HeadWriter.writeSimpleResponse(status: 400, reason: "Bad Request", body: "", close: true, into: &closing)
        XCTAssertEqual(
            String(decoding: closing, as: UTF8.self),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    func testWritersDoNotReallocateWhenCapacitySuffices() {
        let head = parse(.request, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n")
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        let base = out.withUnsafeBufferPointer { $0.baseAddress }
        _ = Array("1.2.3.4".utf8).withUnsafeBytes {
            HeadWriter.writeRequest(head, clientAddress: $0, requestID: 1, options: ForwardingOptions(forwarded: true), into: &out)
        }
        XCTAssertEqual(out.withUnsafeBufferPointer { $0.baseAddress }, base)
    }
}

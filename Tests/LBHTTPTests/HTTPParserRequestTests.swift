import XCTest

@testable import LBHTTP

/// Well-formed requests: heads, framing, keep-alive, Connection handling.
final class HTTPParserRequestTests: XCTestCase {
    func testParsesSimpleGet() throws {
        let r = assertFeeds(.request, bytes("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"))
        XCTAssertEqual(r.events.count, 2)
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.method, .get)
        XCTAssertEqual(h.target, "/index.html?q=1")
        XCTAssertEqual(h.versionMinor, 1)
        XCTAssertEqual(h.host, "example.com")
        XCTAssertEqual(h.framing, HTTPFraming.none)
        XCTAssertTrue(h.keepAlive)
        XCTAssertFalse(h.isUpgrade)
        XCTAssertFalse(h.expectContinue)
        XCTAssertEqual(h.fields, ["Host: example.com", "Accept: */*"])
        XCTAssertEqual(r.events.last, .end)
    }

    func testHeadBytesAreTheRawHead() throws {
        let raw = "GET / HTTP/1.1\r\nHost:  a  \r\n\r\n"
        let r = assertFeeds(.request, bytes(raw))
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.bytes, bytes(raw))
        XCTAssertEqual(h.fields, ["Host: a"], "values are OWS-trimmed")
    }

    func testMapsKnownMethodsAndKeepsOthersAsOther() throws {
        let cases: [(String, HTTPMethod)] = [
            ("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
            ("OPTIONS", .options), ("PATCH", .patch), ("TRACE", .trace), ("PROPFIND", .other), ("get", .other),
        ]
        for (m, expected) in cases {
            let r = assertFeeds(.request, bytes("\(m) /x HTTP/1.1\r\nHost: h\r\n\r\n"))
            XCTAssertEqual(r.firstHead?.method, expected, m)
            XCTAssertEqual(r.firstHead?.methodText, m)
        }
    }

    func testKeepAliveDefaultsPerVersion() {
        XCTAssertEqual(assertFeeds(.request, bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).firstHead?.keepAlive, true)
        XCTAssertEqual(assertFeeds(.request, bytes("GET / HTTP/1.0\r\n\r\n")).firstHead?.keepAlive, false)
        XCTAssertEqual(
            assertFeeds(.request, bytes("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")).firstHead?.keepAlive, true)
        XCTAssertEqual(
            assertFeeds(.request, bytes("GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n")).firstHead?.keepAlive,
            false)
        XCTAssertEqual(
            assertFeeds(.request, bytes("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")).firstHead?.keepAlive,
            false)
    }

    func testHTTP10RequestWithoutHostIsAccepted() {
        let r = assertFeeds(.request, bytes("GET / HTTP/1.0\r\n\r\n"))
        XCTAssertEqual(r.firstHead?.versionMinor, 0)
        XCTAssertNil(r.firstHead?.host)
    }

    func testHigherMinorVersionIsTreatedAsHTTP11() {
        let r = assertFeeds(.request, bytes("GET / HTTP/1.2\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(r.firstHead?.versionMinor, 1)
        XCTAssertEqual(r.events.last, .end)
    }

    func testMarksStandardAndConnectionNamedFieldsHopByHop() throws {
        let r = assertFeeds(
            .request,
            bytes(
                "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret , x-other\r\nKeep-Alive: 5\r\n"
                    + "Proxy-Connection: x\r\nTE: trailers\r\nX-Secret: 1\r\nX-Other: 2\r\nX-Kept: 3\r\n\r\n"))
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(
            h.fields,
            [
                "Host: h", "Connection: keep-alive, X-Secret , x-other [hop]", "Keep-Alive: 5 [hop]",
                "Proxy-Connection: x [hop]", "TE: trailers [hop]", "X-Secret: 1 [hop]", "X-Other: 2 [hop]",
                "X-Kept: 3",
            ])
    }

    func testConnectionCannotStripHostOrContentLength() throws {
        let r = assertFeeds(
            .request, bytes("POST / HTTP/1.1\r\nHost: h\r\nConnection: host, content-length\r\nContent-Length: 2\r\n\r\nok"))
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.fields, ["Host: h", "Connection: host, content-length [hop]", "Content-Length: 2"])
        XCTAssertEqual(r.body, bytes("ok"))
    }

    func testUpgradeRequiresConnectionTokenAndUpgradeField() {
        let ws = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        XCTAssertEqual(assertFeeds(.request, bytes(ws)).firstHead?.isUpgrade, true)
        let noToken = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"
        XCTAssertEqual(assertFeeds(.request, bytes(noToken)).firstHead?.isUpgrade, false)
        let noField = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n"
        XCTAssertEqual(assertFeeds(.request, bytes(noField)).firstHead?.isUpgrade, false)
    }

    func testExpectContinueIsRecognisedCaseInsensitively() {
        let r = assertFeeds(
            .request, bytes("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc"))
        XCTAssertEqual(r.firstHead?.expectContinue, true)
        XCTAssertEqual(r.body, bytes("abc"))
        let other = assertFeeds(.request, bytes("GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n"))
        XCTAssertEqual(other.firstHead?.expectContinue, false)
    }

    func testContentLengthBodyIsDelivered() throws {
        let r = assertFeeds(.request, bytes("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"))
        XCTAssertEqual(r.firstHead?.framing, .contentLength(11))
        XCTAssertEqual(r.body, bytes("hello world"))
        XCTAssertEqual(r.events.count, 3)
    }

    func testZeroContentLengthHasNoBody() {
        let r = assertFeeds(.request, bytes("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(r.firstHead?.framing, .contentLength(0))
        XCTAssertEqual(r.events.count, 2)
    }

    func testAcceptsContentLengthWithLeadingZerosAndOWS() {
        let r = assertFeeds(.request, bytes("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: \t007 \r\n\r\n1234567"))
        XCTAssertEqual(r.firstHead?.framing, .contentLength(7))
    }

    func testChunkedBodyWithExtensionsAndTrailersIsDechunked() throws {
        let msg =
            "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n"
            + "6 ; a ; b = \"q\\\"s;\" \r\n world\r\n"
            + "A\r\n0123456789\r\n"
            + "0\r\nX-Trailer: t\r\nChecksum: abc\r\n\r\n"
        let r = assertFeeds(.request, bytes(msg))
        XCTAssertEqual(r.firstHead?.framing, .chunked)
        XCTAssertEqual(r.body, bytes("hello world0123456789"))
        XCTAssertEqual(r.events.last, .end)
    }

    func testChunkedBodyWithoutTrailers() {
        let r = assertFeeds(
            .request, bytes("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n000\r\n\r\n"))
        XCTAssertEqual(r.body, bytes("abc"))
        XCTAssertEqual(r.events.last, .end)
    }

    func testIgnoresAFewEmptyLinesBeforeTheRequestLine() throws {
        let r = assertFeeds(.request, bytes("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertEqual(r.firstHead?.bytes, bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
    }

    func testAcceptsTargetForms() {
        XCTAssertEqual(assertFeeds(.request, bytes("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")).events.last, .end)
        XCTAssertEqual(
            assertFeeds(.request, bytes("GET http://h/x?y HTTP/1.1\r\nHost: h\r\n\r\n")).firstHead?.target, "http://h/x?y")
        XCTAssertEqual(assertFeeds(.request, bytes("GET HTTPS://h/ HTTP/1.1\r\nHost: h\r\n\r\n")).events.last, .end)
        let connect = assertFeeds(.request, bytes("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n"))
        XCTAssertEqual(connect.firstHead?.method, .connect)
        XCTAssertEqual(connect.firstHead?.target, "h.example:443")
    }

    func testAcceptsObsTextAndHTABInFieldValues() {
        var msg = bytes("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\tb ")
        msg += [0x85, 0xFF]
        msg += bytes("\r\n\r\n")
        let r = assertFeeds(.request, msg)
        XCTAssertEqual(r.events.last, .end)
    }

    func testAcceptsEmptyFieldValueAndEmptyHost() {
        let r = assertFeeds(.request, bytes("GET / HTTP/1.1\r\nHost:\r\nX-Empty:   \r\n\r\n"))
        XCTAssertEqual(r.firstHead?.fields, ["Host: ", "X-Empty: "])
        XCTAssertEqual(r.firstHead?.host, "")
    }

    func testPipelinedMessagesOfDifferentShapes() {
        let msgs =
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
            + "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nuv\r\n0\r\n\r\n"
            + "GET /d HTTP/1.0\r\n\r\n"
        let r = assertFeeds(.request, bytes(msgs))
        XCTAssertEqual(r.heads.map(\.target), ["/a", "/b", "/c", "/d"])
        XCTAssertEqual(r.body, bytes("xyzuv"))
        XCTAssertEqual(r.events.filter { $0 == .end }.count, 4)
    }

    func testCallerMayStopAtEndAndKeepTheRest() {
        var parser = HTTPParser(kind: .request)
        let buf = bytes("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
        buf.withUnsafeBytes { b in
            var pos = 0
            XCTAssertEqual(parser.next(b, &pos), .head)
            XCTAssertEqual(parser.next(b, &pos), .end)
            XCTAssertTrue(parser.isBetweenMessages)
            XCTAssertEqual(pos, 28, "nothing of the next message is consumed")
            XCTAssertEqual(parser.next(b, &pos), .head)
            XCTAssertEqual(parser.head.string(parser.head.target), "/b")
            XCTAssertFalse(parser.isBetweenMessages)
        }
    }

    func testFinishBetweenMessagesIsAClearClose() {
        let r = feed(.request, [bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")], eof: true)
        XCTAssertEqual(r.events.count, 2)
        var parser = HTTPParser(kind: .request)
        XCTAssertEqual(parser.finish(), .needMore)
    }

    func testTruncatedHeadOrBodyIsAnError() {
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\n", .truncated, eof: true)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", .truncated, eof: true)
        assertRejects(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", .truncated, eof: true)
        assertRejects(
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", .truncated, eof: true)
    }

    func testBodyWithinMaxBodyBytesIsAccepted() {
        let limits = HTTPLimits(maxBodyBytes: 5)
        let r = assertFeeds(.request, bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12345"), limits: limits)
        XCTAssertEqual(r.body, bytes("12345"))
        let c = assertFeeds(
            .request, bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
            limits: limits)
        XCTAssertEqual(c.body, bytes("abcde"))
    }

    func testReusesHeadStorageBetweenMessages() {
        var parser = HTTPParser(kind: .request)
        let one = bytes("GET /first/with/a/longer/target HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n")
        let two = bytes("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        func parse(_ b: [UInt8]) -> (UnsafeRawPointer?, UnsafeRawPointer?) {
            b.withUnsafeBytes { buf in
                var pos = 0
                XCTAssertEqual(parser.next(buf, &pos), .head)
                XCTAssertEqual(parser.next(buf, &pos), .end)
            }
            return (
                parser.head.bytes.withUnsafeBytes { $0.baseAddress },
                parser.head.fields.withUnsafeBytes { $0.baseAddress }
            )
        }
        let first = parse(one)
        let second = parse(two)
        XCTAssertEqual(first.0, second.0, "head bytes storage reused")
        XCTAssertEqual(first.1, second.1, "fields storage reused")
        XCTAssertEqual(parser.head.string(parser.head.target), "/2")
    }
}

/// Random split points over a mixed pipeline: the event sequence must not depend on how bytes arrive.
final class HTTPParserSplitTests: XCTestCase {
    func testRandomSplitsOfAMixedPipelineYieldTheSameEvents() {
        let stream = bytes(
            "\r\nPOST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "3;x=\"y\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n"
                + "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                + "PUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nwxyz")
        let reference = feed(.request, [stream])
        XCTAssertEqual(reference.heads.count, 3)
        var rng = SplitMix64(seed: 42)
        for _ in 0..<200 {
            var pieces: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = Int(rng.next() % 12) + 1
                pieces.append(Array(stream[i..<min(i + n, stream.count)]))
                i += n
            }
            XCTAssertEqual(feed(.request, pieces).events, reference.events)
        }
    }
}

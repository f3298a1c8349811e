import XCTest

@testable import LBHTTP

/// Responses: body rules that depend on the request method and status, 1xx, upgrades, close-delimited
/// bodies, and the defects that make a response unusable (the proxy answers 502).
final class HTTPParserResponseTests: XCTestCase {
    func testParsesStatusLineAndContentLengthBody() throws {
        let r = assertFeeds(.response, bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"))
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.status, 200)
        XCTAssertEqual(h.reason, "OK")
        XCTAssertEqual(h.framing, .contentLength(5))
        XCTAssertTrue(h.keepAlive)
        XCTAssertEqual(r.body, bytes("hello"))
        XCTAssertEqual(r.events.last, .end)
    }

    func testAcceptsEmptyReasonWithOrWithoutSpace() {
        XCTAssertEqual(assertFeeds(.response, bytes("HTTP/1.1 204 \r\n\r\n")).firstHead?.reason, "")
        XCTAssertEqual(assertFeeds(.response, bytes("HTTP/1.1 204\r\n\r\n")).firstHead?.status, 204)
    }

    func testChunkedResponseBody() {
        let r = assertFeeds(
            .response, bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"))
        XCTAssertEqual(r.firstHead?.framing, .chunked)
        XCTAssertEqual(r.body, bytes("Wikipedia"))
    }

    func testTrailerFieldsOfAChunkedResponseAreKeptUntilTheNextMessage() {
        let message = bytes(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\nX-Checksum: abc\r\n"
                + "Server-Timing:  db;dur=5 \r\n\r\n")
        func fields(_ p: HTTPParser) -> [String] {
            let b = p.trailerBytes
            return p.trailers.map {
                String(decoding: b[$0.name], as: UTF8.self) + "=" + String(decoding: b[$0.value], as: UTF8.self)
            }
        }
        // Whole, and one byte at a time: the same fields when `.end` comes.
        for step in [message.count, 1] {
            var parser = HTTPParser(kind: .response)
            var atEnd: [String]?
            for start in stride(from: 0, to: message.count, by: step) {
                Array(message[start..<min(start + step, message.count)]).withUnsafeBytes { raw in
                    var pos = 0
                    while true {
                        switch parser.next(raw, &pos) {
                        case .end: atEnd = fields(parser)
                        case .needMore: return
                        case .error(let e): return XCTFail("\(e)")
                        case .head, .body: continue
                        }
                    }
                }
            }
            XCTAssertEqual(atEnd, ["X-Checksum=abc", "Server-Timing=db;dur=5"], "step \(step)")
            parser.expectResponse(to: .get)
            bytes("HTTP/1.1 204 No Content\r\n\r\n").withUnsafeBytes { raw in
                var pos = 0
                XCTAssertEqual(parser.next(raw, &pos), .head)
            }
            XCTAssertEqual(fields(parser), [], "the next message has none")
        }
    }

    func testHeadResponseHasNoBodyWhateverItsContentLength() {
        let r = assertFeeds(.response, bytes("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"), methods: [.head])
        XCTAssertEqual(r.firstHead?.framing, HTTPFraming.none)
        XCTAssertEqual(r.firstHead?.fields, ["Content-Length: 1234"])
        XCTAssertEqual(r.events.count, 2)
        let chunked = assertFeeds(
            .response, bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), methods: [.head])
        XCTAssertEqual(chunked.events.count, 2)
    }

    func test204And304HaveNoBody() {
        for s in ["204 No Content", "304 Not Modified"] {
            let r = assertFeeds(.response, bytes("HTTP/1.1 \(s)\r\nContent-Length: 10\r\n\r\n"))
            XCTAssertEqual(r.firstHead?.framing, HTTPFraming.none)
            XCTAssertEqual(r.events.count, 2)
        }
    }

    func testInterimResponsesPrecedeTheFinalOneForTheSameRequest() {
        // A HEAD request answered by 100 and 103, then the final 200 whose CL must not be read as a body.
        let msg =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
        let r = assertFeeds(.response, bytes(msg), methods: [.head])
        XCTAssertEqual(r.heads.map(\.status), [100, 103, 200])
        XCTAssertEqual(r.events.filter { $0 == .end }.count, 3)
        XCTAssertEqual(r.body, [])
    }

    func testContinueThenFinalResponseWithBody() {
        let r = assertFeeds(.response, bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"))
        XCTAssertEqual(r.heads.map(\.status), [100, 201])
        XCTAssertEqual(r.body, bytes("ok"))
    }

    func testSwitchingProtocolsUpgradesAndLeavesTheRestToTheTunnel() {
        let r = assertFeeds(
            .response, bytes("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\u{81}\u{05}hello"))
        XCTAssertEqual(r.firstHead?.isUpgrade, true)
        XCTAssertEqual(r.events.count, 2)
        XCTAssertTrue(r.upgraded)
        XCTAssertEqual(r.tunnel, bytes("\u{81}\u{05}hello"))
    }

    func testSuccessfulConnectBecomesATunnel() {
        let r = assertFeeds(.response, bytes("HTTP/1.1 200 Connection Established\r\n\r\nraw bytes"), methods: [.connect])
        XCTAssertTrue(r.upgraded)
        XCTAssertEqual(r.tunnel, bytes("raw bytes"))
        let refused = assertFeeds(.response, bytes("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), methods: [.connect])
        XCTAssertFalse(refused.upgraded)
    }

    func testResponseWithoutLengthIsCloseDelimitedAndEndsAtEOF() throws {
        let r = assertFeeds(.response, bytes("HTTP/1.1 200 OK\r\nServer: old\r\n\r\nall of this is body"), eof: true)
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.framing, .closeDelimited)
        XCTAssertFalse(h.keepAlive)
        XCTAssertEqual(r.body, bytes("all of this is body"))
        XCTAssertEqual(r.events.last, .end)
    }

    func testCloseDelimitedBodyWithoutEOFNeverEnds() {
        let r = feed(.response, [bytes("HTTP/1.1 200 OK\r\n\r\npartial")])
        XCTAssertEqual(r.events.last, .body(bytes("partial")))
    }

    func testTruncatedResponseBodyIsAnError() {
        assertRejects("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", .truncated, kind: .response, eof: true)
        assertRejects("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", .truncated, kind: .response, eof: true)
        assertRejects("HTTP/1.1 200 OK\r\nContent-Le", .truncated, kind: .response, eof: true)
    }

    func testKeepAlivePerVersionAndConnection() {
        XCTAssertEqual(assertFeeds(.response, bytes("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")).firstHead?.keepAlive, false)
        XCTAssertEqual(
            assertFeeds(.response, bytes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"))
                .firstHead?.keepAlive, true)
        XCTAssertEqual(
            assertFeeds(.response, bytes("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
                .firstHead?.keepAlive, false)
    }

    func testRejectsAmbiguousFraming() {
        assertRejects(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            .bothContentLengthAndTransferEncoding, kind: .response)
        assertRejects("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", .multipleContentLength, kind: .response)
        assertRejects("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", .invalidContentLength, kind: .response)
        assertRejects("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", .transferEncodingNotChunked, kind: .response)
        assertRejects("HTTP/1.1 200 OK\r\nTransfer-Encoding: cow, chunked\r\n\r\n", .unsupportedTransferCoding, kind: .response)
        // Re-framed for the client as plain chunked: a coding before chunked would be lost.
        assertRejects("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferCoding, kind: .response)
        assertRejects("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .chunkedAppliedTwice, kind: .response)
        assertRejects("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10, kind: .response)
        assertRejects(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", .missingChunkCRLF, kind: .response)
    }

    func testRejectsGarbageStatusLines() {
        for line in [
            "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 abc OK", "HTTP/1.1  200 OK", "HTTP/1.1 099 X", "http/1.1 200 OK",
            "HTTP/1.1", "HTTP/1.1 200OK", "ICY 200 OK", "HTTP/1.1 200 O\u{01}K",
        ] {
            assertRejects(line + "\r\nContent-Length: 0\r\n\r\n", .invalidStatusLine, status: 502, kind: .response)
        }
        assertRejects("HTTP/2.0 200 OK\r\n\r\n", .unsupportedVersion, kind: .response)
    }

    func testRejectsBadHeaderBytesAndObsFoldInResponses() {
        assertRejects("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", .obsFold, kind: .response)
        assertRejects("HTTP/1.1 200 OK\r\nX: a\u{00}\r\nContent-Length: 0\r\n\r\n", .invalidFieldValue, kind: .response)
        assertRejects("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", .bareLF, kind: .response)
    }

    func testLongStatusLineIsABadResponse() {
        let r = assertFeeds(
            .response, bytes("HTTP/1.1 200 " + String(repeating: "x", count: 100)), limits: HTTPLimits(maxRequestLine: 64))
        XCTAssertEqual(r.error, .statusLineTooLong)
    }

    func testResponsesIgnoreMaxBodyBytes() {
        let r = assertFeeds(
            .response, bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"), limits: HTTPLimits(maxBodyBytes: 1))
        XCTAssertEqual(r.body.count, 10)
    }

    func testResponsesAreNotPrecededByEmptyLines() {
        assertRejects("\r\nHTTP/1.1 200 OK\r\n\r\n", .tooManyLeadingEmptyLines, kind: .response)
    }
}

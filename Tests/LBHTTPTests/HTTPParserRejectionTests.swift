import XCTest

@testable import LBHTTP

/// Every request defect the parser rejects, with the status the proxy answers. Each case is fed whole,
/// byte by byte and in pieces (see `assertRejects`).
final class HTTPParserRejectionTests: XCTestCase {
    private let post = "POST /p HTTP/1.1\r\nHost: h\r\n"

    // MARK: Content-Length / Transfer-Encoding

    func testRejectsBothContentLengthAndTransferEncoding() {
        assertRejects(
            post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .bothContentLengthAndTransferEncoding,
            status: 400)
        assertRejects(
            post + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", .bothContentLengthAndTransferEncoding)
    }

    func testRejectsSeveralContentLengthFieldsEvenWhenEqual() {
        assertRejects(post + "Content-Length: 42\r\nContent-Length: 42\r\n\r\n", .multipleContentLength, status: 400)
        assertRejects(post + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", .multipleContentLength)
    }

    func testRejectsListValuedAndMalformedContentLength() {
        for v in ["42, 42", "42,42", "+5", "-1", "0x10", "1 0", "1.0", "", "abc", "5a", "9223372036854775808",
            "18446744073709551616", "99999999999999999999999"]
        {
            assertRejects(post + "Content-Length: \(v)\r\n\r\n", .invalidContentLength, status: 400)
        }
    }

    func testAcceptsLargestContentLength() {
        let r = feed(.request, [bytes(post + "Content-Length: 9223372036854775807\r\n\r\n")])
        XCTAssertEqual(r.firstHead?.framing, .contentLength(UInt64(Int64.max)))
    }

    func testRejectsTransferEncodingWhoseFinalCodingIsNotChunked() {
        assertRejects(post + "Transfer-Encoding: gzip\r\n\r\n", .transferEncodingNotChunked, status: 400)
        assertRejects(post + "Transfer-Encoding: chunked, gzip\r\n\r\n", .transferEncodingNotChunked)
        assertRejects(post + "Transfer-Encoding: xchunked\r\n\r\n", .transferEncodingNotChunked)
        assertRejects(post + "Transfer-Encoding: identity\r\n\r\n", .transferEncodingNotChunked)
    }

    func testRejectsChunkedAppliedTwice() {
        assertRejects(post + "Transfer-Encoding: chunked,chunked\r\n\r\n", .chunkedAppliedTwice, status: 400)
        assertRejects(post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .chunkedAppliedTwice)
        assertRejects(post + "Transfer-Encoding: chunked;a, gzip, Chunked\r\n\r\n", .chunkedAppliedTwice)
    }

    func testAnswers501ToUnknownCodingBeforeChunked() {
        assertRejects(post + "Transfer-Encoding: cow, chunked\r\n\r\n", .unsupportedTransferCoding, status: 501)
        assertRejects(post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: x-custom;q=1\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n", .unsupportedTransferCoding)
    }

    func testRejectsTransferCodingsThatAreNotTokenWithParameters() {
        for v in [
            "\"chunked\"", "", "chunked\u{01}", "chunk ed", "chunked;q=\"1\"", "chunked;=1", "chunked;a=",
            "chunked;a b", "chunked/1", ";chunked", "chunked;a=1=2",
        ] {
            let expected: HTTPParseError = v.contains("\u{01}") ? .invalidFieldValue : .invalidTransferEncoding
            assertRejects(post + "Transfer-Encoding: \(v)\r\n\r\n", expected, status: 400)
        }
        var obsText = bytes(post + "Transfer-Encoding: chunked")
        obsText += [0xA0] + bytes("\r\n\r\n")
        XCTAssertEqual(assertFeeds(.request, obsText).error, .invalidTransferEncoding)
    }

    func testRejectsFramingHeaderNamesSpelledWithUnderscores() {
        for name in ["Content_Length", "content_length", "Transfer_Encoding", "TRANSFER_ENCODING", "Transfer_encoding"] {
            assertRejects(post + "\(name): 5\r\n\r\n", .underscoreFramingHeader, status: 400)
        }
        // Together with the real header (the smuggling shape) as well.
        assertRejects(post + "Content-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\nhello", .underscoreFramingHeader)
    }

    func testRejectsTransferEncodingInHTTP10() {
        assertRejects("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10, status: 400)
    }

    // MARK: Field syntax

    func testRejectsWhitespaceBetweenFieldNameAndColon() {
        assertRejects(post + "Content-Length : 5\r\n\r\n", .whitespaceBeforeColon, status: 400)
        assertRejects(post + "Transfer-Encoding\t: chunked\r\n\r\n", .whitespaceBeforeColon)
    }

    func testRejectsInvalidFieldNames() {
        assertRejects(post + "Bad@Name: x\r\n\r\n", .invalidFieldName, status: 400)
        assertRejects(post + "\u{01}Content-Length: 5\r\n\r\n", .invalidFieldName)
        assertRejects(post + "NoColon\r\n\r\n", .invalidFieldName)
        assertRejects(post + ": value\r\n\r\n", .emptyFieldName, status: 400)
        var withHighByte = bytes(post)
        withHighByte += [0xA0] + bytes("Content-Length: 1\r\n\r\n")
        XCTAssertEqual(assertFeeds(.request, withHighByte).error, .invalidFieldName)
    }

    func testRejectsControlCharactersInFieldValues() {
        for c in ["\u{00}", "\u{01}", "\u{11}", "\u{1F}", "\u{7F}"] {
            assertRejects(post + "X-A: a\(c)b\r\n\r\n", .invalidFieldValue, status: 400)
        }
    }

    func testRejectsBareLFAndBareCR() {
        assertRejects("GET / HTTP/1.1\nHost: h\r\n\r\n", .bareLF, status: 400)
        assertRejects("GET / HTTP/1.1\r\nHost: h\n\r\n", .bareLF)
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\n\n", .bareLF)
        assertRejects("GET / HTTP/1.1\r\nX-A: a\nb\r\nHost: h\r\n\r\n", .bareLF)
        assertRejects("GET / HTTP/1.1\r\nX-A: a\rb\r\nHost: h\r\n\r\n", .bareCR, status: 400)
        assertRejects("GET / HTTP/1.1\rHost: h\r\n\r\n", .bareCR)
    }

    func testRejectsObsFold() {
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", .obsFold, status: 400)
        assertRejects("GET / HTTP/1.1\r\n\tHost: h\r\n\r\n", .obsFold)
        assertRejects("GET / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: h\r\n\r\n", .obsFold)
    }

    // MARK: Host

    func testRejectsMissingOrRepeatedHost() {
        assertRejects("GET / HTTP/1.1\r\n\r\n", .missingHost, status: 400)
        assertRejects("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", .multipleHost, status: 400)
        assertRejects("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", .multipleHost)
    }

    func testRejectsInvalidHostCharacters() {
        for v in ["a b", "a/b", "a@b", "a?b", "a#b", "a\"b", "a\\b"] {
            assertRejects("GET / HTTP/1.1\r\nHost: \(v)\r\n\r\n", .invalidHost, status: 400)
        }
        XCTAssertEqual(feed(.request, [bytes("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")]).events.last, .end)
    }

    func testRejectsInvalidConnectionTokens() {
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\nConnection: \"close\"\r\n\r\n", .invalidConnection, status: 400)
    }

    // MARK: Request line

    func testRejectsInvalidMethods() {
        assertRejects("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod, status: 400)
        assertRejects("bad_method\u{01} /foo HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod)
        assertRejects(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidMethod)
        assertRejects("GET\r\nHost: h\r\n\r\n", .invalidRequestLine, status: 400)
    }

    func testRejectsInvalidTargets() {
        for t in ["/a\tb", "/a\u{01}", "/a\u{7F}", "foo", "*", "http://", "http:///x", "http://u@h/", "http://h\\/"] {
            assertRejects("GET \(t) HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget, status: 400)
        }
        assertRejects("CONNECT  HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget)
        assertRejects("CONNECT /path HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget)
        assertRejects("CONNECT host HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget)
        assertRejects("CONNECT http://h:443 HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget)
        assertRejects("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", .invalidTarget)
    }

    func testRejectsMalformedVersions() {
        assertRejects("GET / http/1.1\r\nHost: h\r\n\r\n", .invalidVersion, status: 400)
        assertRejects("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", .invalidVersion)
        assertRejects("GET / HTTP/1.1 HTTP/1.1\r\nHost: h\r\n\r\n", .invalidVersion)
        assertRejects("GET / HTTP/11\r\nHost: h\r\n\r\n", .invalidVersion)
        assertRejects("GET / HTTP/1.10\r\nHost: h\r\n\r\n", .invalidVersion)
        assertRejects("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", .invalidVersion)
        assertRejects("GET /\r\nHost: h\r\n\r\n", .missingVersion, status: 400)
    }

    func testAnswers505ToOtherMajorVersions() {
        assertRejects("GET / HTTP/2.0\r\nHost: h\r\n\r\n", .unsupportedVersion, status: 505)
        assertRejects("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .unsupportedVersion)
        assertRejects("GET / HTTP/0.9\r\nHost: h\r\n\r\n", .unsupportedVersion)
    }

    func testRejectsTooManyLeadingEmptyLines() {
        let crlfs = String(repeating: "\r\n", count: HTTPParser.maxLeadingEmptyLines + 1)
        assertRejects(crlfs + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", .tooManyLeadingEmptyLines, status: 400)
    }

    // MARK: Limits

    func testRequestLineLongerThanLimitIs414BeforeTheLineEnds() {
        let limits = HTTPLimits(maxRequestLine: 32)
        let ok = "GET /" + String(repeating: "a", count: 18) + " HTTP/1.1\r\nHost: h\r\n\r\n"  // exactly 32
        XCTAssertEqual(assertFeeds(.request, bytes(ok), limits: limits).events.last, .end)
        // No CRLF at all: the parser must not wait for one.
        assertRejects("GET /" + String(repeating: "a", count: 100), .requestLineTooLong, status: 414, limits: limits)
        assertRejects("GET /" + String(repeating: "a", count: 19) + " HTTP/1.1\r\n", .requestLineTooLong, limits: limits)
    }

    func testHeadLargerThanLimitIs431() {
        let limits = HTTPLimits(maxHeaderBytes: 64)
        let head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 32) + "\r\n\r\n"  // 64 bytes
        XCTAssertEqual(head.utf8.count, 64)
        XCTAssertEqual(assertFeeds(.request, bytes(head), limits: limits).events.last, .end)
        assertRejects(
            "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 33) + "\r\n\r\n", .headerTooLarge,
            status: 431, limits: limits)
        assertRejects("GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: 1000), .headerTooLarge, limits: limits)
    }

    func testMoreFieldsThanLimitIs431() {
        let limits = HTTPLimits(maxHeaderCount: 3)
        XCTAssertEqual(
            assertFeeds(.request, bytes("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"), limits: limits).events.last,
            .end)
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", .tooManyHeaders, status: 431, limits: limits)
    }

    func testBodyLargerThanLimitIs413() {
        let limits = HTTPLimits(maxBodyBytes: 4)
        assertRejects(post + "Content-Length: 5\r\n\r\n12345", .bodyTooLarge, status: 413, limits: limits)
        assertRejects(
            post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", .bodyTooLarge, limits: limits)
    }

    func testTrailersCountTowardHeaderLimits() {
        let chunked = post + "Transfer-Encoding: chunked\r\n\r\n0\r\n"
        assertRejects(chunked + "A: 1\r\nB: 2\r\n\r\n", .tooManyHeaders, limits: HTTPLimits(maxHeaderCount: 3))
        let headSize = (post + "Transfer-Encoding: chunked\r\n\r\n").utf8.count
        assertRejects(
            chunked + "A: " + String(repeating: "x", count: 20) + "\r\n\r\n", .headerTooLarge,
            limits: HTTPLimits(maxHeaderBytes: headSize + 10))
    }

    // MARK: Chunked framing

    func testRejectsMalformedChunkSizes() {
        let c = post + "Transfer-Encoding: chunked\r\n\r\n"
        assertRejects(c + "0x5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize, status: 400)
        assertRejects(c + "+5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize)
        assertRejects(c + " 5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize)
        assertRejects(c + "5 \r\nhello\r\n0\r\n\r\n", .invalidChunkSize)
        assertRejects(c + "\r\nhello\r\n0\r\n\r\n", .invalidChunkSize)
        assertRejects(c + "g\r\n", .invalidChunkSize)
        assertRejects(c + "5\nhello\r\n0\r\n\r\n", .bareLF)
        assertRejects(c + "10000000000000000\r\n", .chunkSizeOverflow, status: 400)
        assertRejects(c + "8000000000000000\r\n", .chunkSizeOverflow)
    }

    func testRejectsMalformedChunkExtensions() {
        let c = post + "Transfer-Encoding: chunked\r\n\r\n"
        for ext in [";", "; =v", ";a=", ";a=\"unterminated", ";a=b c", ";a\u{01}", "x", ";a=\"\u{01}\""] {
            let r = assertFeeds(.request, bytes(c + "1" + ext + "\r\nx\r\n0\r\n\r\n"))
            XCTAssertTrue(
                r.error == .invalidChunkExtension || r.error == .invalidChunkSize, "\(ext.debugDescription): \(r.events)")
        }
        assertRejects(c + "1;" + String(repeating: "a", count: 5000) + "\r\nx\r\n0\r\n\r\n", .chunkLineTooLong)
    }

    func testRejectsChunkDataNotFollowedByCRLF() {
        let c = post + "Transfer-Encoding: chunked\r\n\r\n"
        assertRejects(c + "3\r\nabcd\r\n0\r\n\r\n", .missingChunkCRLF, status: 400)
        assertRejects(c + "3\r\nabc\rX0\r\n\r\n", .missingChunkCRLF)
    }

    func testRejectsInvalidTrailers() {
        let c = post + "Transfer-Encoding: chunked\r\n\r\n0\r\n"
        assertRejects(c + "Bad Name: x\r\n\r\n", .invalidFieldName)
        assertRejects(c + "Bad : x\r\n\r\n", .whitespaceBeforeColon)
        assertRejects(c + "X: a\u{00}\r\n\r\n", .invalidFieldValue)
        assertRejects(c + "X: a\r\n folded\r\n\r\n", .obsFold)
        assertRejects(c + "X: a\n\r\n", .bareLF)
    }
}

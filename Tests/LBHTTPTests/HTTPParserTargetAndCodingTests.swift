import XCTest

@testable import LBHTTP

/// Requests accepted so that every Compliant case of the desync corpus is forwarded: empty and non-ASCII
/// targets, absolute-form, content codings before chunked, coding parameters. Each is fed whole, byte by
/// byte and pipelined (`assertFeeds`).
final class HTTPParserTargetAndCodingTests: XCTestCase {
    private let post = "POST /p HTTP/1.1\r\nHost: h\r\n"
    private let chunk = "5\r\nhello\r\n0\r\n\r\n"

    func testAcceptsEmptyTargetAsEmptyPath() throws {
        let r = assertFeeds(.request, bytes("GET  HTTP/1.1\r\nHost: h\r\n\r\n"))
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.target, "")
        XCTAssertEqual(r.events.last, .end)
        XCTAssertEqual(assertFeeds(.request, bytes("OPTIONS  HTTP/1.1\r\nHost: h\r\n\r\n")).events.last, .end)
    }

    func testAcceptsObsTextInTargetUnchanged() throws {
        var raw = bytes("GET /")
        raw += [0xD1, 0x81, 0x80, 0xFF] + bytes("?q=\u{7E} HTTP/1.1\r\nHost: h\r\n\r\n")
        let h = try XCTUnwrap(assertFeeds(.request, raw).firstHead)
        XCTAssertEqual(Array(h.bytes[4..<13]), [0x2F, 0xD1, 0x81, 0x80, 0xFF] + bytes("?q=~"))
    }

    func testContentCodingsBeforeFinalChunkedFrameAsChunked() throws {
        for te in [
            "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: deflate, identity, chunked",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: deflate\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: gzip , deflate , \tidentity\t, compress\t, chunked",
            "Transfer-Encoding: X-GZIP, br, zstd, x-compress, CHUNKED",
        ] {
            let r = assertFeeds(.request, bytes(post + te + "\r\n\r\n" + chunk))
            XCTAssertEqual(r.firstHead?.framing, .chunked, te)
            XCTAssertEqual(r.body, bytes("hello"), te)
            XCTAssertEqual(r.events.last, .end, te)
        }
    }

    func testParametersOnCodingsAreIgnoredForFraming() {
        for te in [
            "Transfer-Encoding: \t\t\t\tchunked;custom_param;\t\t\t\t", "Transfer-Encoding: chunked; q=1",
            "Transfer-Encoding: chunked ; a = b ;; c",
            "Transfer-Encoding:    gzip   ;   \r\nTransfer-Encoding: deflate\t\t;\t\t\r\nTransfer-Encoding: chunked;x;",
        ] {
            let r = assertFeeds(.request, bytes(post + te + "\r\n\r\n" + chunk))
            XCTAssertEqual(r.firstHead?.framing, .chunked, te)
            XCTAssertEqual(r.body, bytes("hello"), te)
        }
    }

    func testFinalCodingStillHasToBeChunkedWithParameters() {
        assertRejects(post + "Transfer-Encoding: chunked;a, gzip\r\n\r\n", .transferEncodingNotChunked)
        assertRejects(post + "Transfer-Encoding: chunkedx;a\r\n\r\n", .transferEncodingNotChunked)
    }

    func testAbsoluteFormAuthorityIsTheRequestHost() throws {
        let r = assertFeeds(.request, bytes("GET http://a.example:8080/x?y HTTP/1.1\r\nHost: other\r\n\r\n"))
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.host, "a.example:8080", "RFC 9112 §3.2.2: the authority replaces Host")
        let noPath = try XCTUnwrap(assertFeeds(.request, bytes("GET HTTPS://b?q HTTP/1.0\r\n\r\n")).firstHead)
        XCTAssertEqual(noPath.host, "b")
    }

    func testHTTP10WithoutHostOrAuthorityHasNoHost() {
        XCTAssertNil(assertFeeds(.request, bytes("GET /x HTTP/1.0\r\n\r\n")).firstHead?.host)
    }

    func testUnderscoreInOtherFieldNamesIsFine() {
        let r = assertFeeds(
            .request, bytes(post + "My_Custom_Header: v\r\nContent_Type: x\r\nContent_Lengths: 1\r\n\r\n"))
        XCTAssertEqual(r.events.last, .end)
    }

    func testUnderscoreFramingNamesAreOnlyRejectedInRequests() {
        let r = assertFeeds(.response, bytes("HTTP/1.1 200 OK\r\nContent_Length: 9\r\nContent-Length: 2\r\n\r\nok"))
        XCTAssertEqual(r.firstHead?.framing, .contentLength(2))
    }
}

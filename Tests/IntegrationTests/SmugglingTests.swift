import Foundation
import XCTest

/// Hostile requests through the real proxy with a `SpyBackend` behind it: each gets the status the parser's rules
/// promise (see `HTTPParseError.status`), the connection is closed, and the spy proves nothing was smuggled past.
///
/// Defects in the head must reach no backend at all (not even a TCP connection). Defects in a chunked body are found
/// only after the (valid) head went upstream, because the proxy streams bodies: there the evidence is that the
/// backend never received a complete request and never saw a byte of the request smuggled behind it.
final class SmugglingTests: IntegrationTestCase {
    private var spy: SpyBackend!
    private var proxy: LBServerProcess!

    override func setUpWithError() throws {
        try super.setUpWithError()
        spy = try SpyBackend()
        proxy = try startProxy(backends: [spy.address])
    }

    // MARK: Framing headers

    func testRejectsBothContentLengthAndTransferEncoding() throws {
        try assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            status: 400)
        try assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            status: 400, "TE before CL")
    }

    func testRejectsRepeatedOrListedContentLength() throws {
        try assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello", status: 400,
            "two differing")
        try assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", status: 400,
            "two equal")
        try assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42, 42\r\n\r\n" + String(repeating: "x", count: 42),
            status: 400, "list 42, 42")
    }

    func testRejectsContentLengthThatIsNotPlainDigits() throws {
        for value in ["+5", "0x10", " 1 0", "-1", "1_0", "5;", "5.0", "99999999999999999999"] {
            try assertRejected(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\nhello", status: 400, "CL \"\(value)\"")
        }
    }

    /// RFC 9112 §6.3: chunked not last → the length cannot be determined → 400; chunked twice is ambiguous → 400.
    /// Codings before a final chunked (`gzip, chunked`) are content for the backend and are forwarded (the
    /// desync-guardian corpus counts them Compliant); the proxy re-frames the chunks itself.
    func testRejectsTransferCodingsWhereChunkedIsNotFinalOrRepeated() throws {
        let body = "5\r\nhello\r\n0\r\n\r\n"
        for (value, status) in [
            ("chunked, gzip", 400), ("gzip", 400), ("identity", 400), ("chunked, chunked", 400), ("\"chunked\"", 400),
        ] {
            try assertRejected(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(value)\r\n\r\n\(body)", status: status,
                "TE \"\(value)\"")
        }
        try assertRejected(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n\(body)",
            status: 400, "two TE fields, last gzip")
    }

    func testForwardsCodingsBeforeAFinalChunkedReframed() throws {
        for (value, forwarded) in [("gzip, chunked", "gzip, chunked"), ("chunked;q=1", "chunked")] {
            let spy = try SpyBackend(response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            let lb = try startProxy(backends: [spy.address])
            let c = try RawHTTPConnection(port: lb.proxyPort)
            try c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(value)\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            XCTAssertEqual(try c.readResponse().status, 200, "TE \"\(value)\"")
            try spy.waitForRequests(1, timeout: 5)
            let seen = spy.receivedString
            XCTAssertTrue(seen.contains("Transfer-Encoding: \(forwarded)\r\n"), seen)
            XCTAssertTrue(seen.hasSuffix("5\r\nhello\r\n0\r\n\r\n"), seen)
        }
    }

    func testRejectsTransferEncodingInHTTP10() throws {
        try assertRejected(
            "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400)
    }

    // MARK: Field syntax

    func testRejectsMalformedFieldLines() throws {
        let cases: [(String, String)] = [
            ("space before colon", "Content-Length : 5\r\n"),
            ("tab before colon", "X-A\t: 1\r\n"),
            ("invalid char in name", "X-A(b): 1\r\n"),
            ("space inside name", "X A: 1\r\n"),
            ("NUL in value", "X-A: a\u{0}b\r\n"),
            ("bare CR in value", "X-A: a\rb\r\n"),
            ("bare LF in value", "X-A: a\nX-B: b\r\n"),
            ("obs-fold", "X-A: a\r\n folded\r\n"),
            ("obs-fold right after the request line", " X-A: a\r\n"),
            ("no colon", "X-A\r\n"),
            ("empty name", ": a\r\n"),
        ]
        for (name, field) in cases {
            try assertRejected("GET / HTTP/1.1\r\nHost: a\r\n\(field)\r\n", status: 400, name)
        }
    }

    // MARK: Chunked bodies (found after the head went upstream)

    func testRejectsMalformedChunkedBodies() throws {
        let head = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        let bodies: [(String, String)] = [
            ("chunk size 0x5", "0x5\r\nhello\r\n0\r\n\r\n"),
            ("chunk size -1", "-1\r\nhello\r\n0\r\n\r\n"),
            ("chunk size overflow", "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            ("chunk size with space", "5 \r\nhello\r\n0\r\n\r\n"),
            ("missing CRLF after chunk data", "5\r\nhelloXX0\r\n\r\n"),
            ("chunk data longer than its size", "3\r\nhello\r\n0\r\n\r\n"),
            ("bare LF after chunk size", "5\nhello\r\n0\r\n\r\n"),
        ]
        for (name, body) in bodies {
            try assertRejected(head + body + smuggled, status: 400, name, headMayReachBackend: true)
        }
    }

    // MARK: Host, method, version, limits

    func testRejectsMissingOrRepeatedHost() throws {
        try assertRejected("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", status: 400, "missing Host in 1.1")
        try assertRejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400, "two Host fields")
        try assertRejected("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", status: 400, "two equal Host fields")
        try assertRejected("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", status: 400, "two Host fields in 1.0")
    }

    func testRejectsBadMethodToken() throws {
        for line in ["G(ET / HTTP/1.1", "GE T / HTTP/1.1", "GET\t/ HTTP/1.1", "\u{1}GET / HTTP/1.1", " GET / HTTP/1.1"]
        {
            try assertRejected("\(line)\r\nHost: a\r\n\r\n", status: 400, line.debugDescription)
        }
    }

    func testAnswers505ForHTTP2RequestLine() throws {
        try assertRejected("GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505, "HTTP/2.0")
        try assertRejected("GET / HTTP/3.0\r\nHost: a\r\n\r\n", status: 505, "HTTP/3.0")
        try assertRejected("GET / HTTP/0.9\r\nHost: a\r\n\r\n", status: 505, "HTTP/0.9 with a version")
    }

    func testRejectsMalformedVersions() throws {
        for version in ["HTTP/1.1.1", "http/1.1", "HTTP/11", "HTTP/1.x", "HTTP/1.1 "] {
            try assertRejected("GET / \(version)\r\nHost: a\r\n\r\n", status: 400, version)
        }
        try assertRejected("GET /\r\nHost: a\r\n\r\n", status: 400, "no version (HTTP/0.9 style)")
    }

    /// The parser's documented decision (RFC 9110 §2.5): HTTP/1.x with x > 1 is handled as HTTP/1.1 and forwarded
    /// as HTTP/1.1.
    func testForwardsHTTP12AsHTTP11() throws {
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /v12 HTTP/1.2\r\nHost: a\r\n\r\n")
        let response = try connection.readResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.bodyString, "spy")
        XCTAssertEqual(response.version, "HTTP/1.1")
        try spy.waitForRequests(1)
        XCTAssertTrue(spy.receivedString.hasPrefix("GET /v12 HTTP/1.1\r\n"), spy.receivedString)
    }

    func testAnswers414ForOverlongRequestLine() throws {
        let path = "/" + String(repeating: "a", count: 9_000)
        try assertRejected("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n", status: 414)
    }

    func testAnswers431ForTooManyHeaders() throws {
        let fields = (0..<101).map { "X-H-\($0): v\r\n" }.joined()
        try assertRejected("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n", status: 431)
    }

    func testAnswers431ForTooLargeHeaderSection() throws {
        let big = String(repeating: "v", count: 70_000)
        try assertRejected("GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(big)\r\n\r\n", status: 431)
    }

    func testAnswers405ForConnect() throws {
        try assertRejected("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", status: 405)
    }

    // MARK: Classic smuggling payloads

    /// CL.TE and TE.CL (and obfuscated-TE variants) followed by a second request: whichever framing a lenient
    /// server would have picked, the proxy answers 400, closes, and the second request never reaches the backend.
    func testClassicCLTEAndTECLPayloadsNeverSmuggleASecondRequest() throws {
        let second = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        let payloads: [(String, String)] = [
            (
                "CL.TE",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
            ),
            (
                "TE.CL",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5c\r\nGPOST /smuggled HTTP/1.1\r\nContent-Type: x\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n"
            ),
            (
                "CL.TE, TE obfuscated with a tab",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\nG"
            ),
            (
                "CL.TE, TE xchunked",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nG"
            ),
            (
                "CL.TE, TE with space before colon",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nG"
            ),
            (
                "TE.TE, second TE identity",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
                    + "0\r\n\r\n"
            ),
            (
                "CL.CL",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n"
            ),
            (
                "TE in HTTP/1.0 keep-alive",
                "POST / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
        ]
        for (name, payload) in payloads {
            try assertRejected(payload + second, status: 400, name)
        }
        XCTAssertFalse(spy.receivedString.contains("smuggled"), spy.receivedString)
    }

    /// Control: the same proxy and spy do carry a well-formed request, so "the spy saw nothing" above means
    /// something.
    func testWellFormedRequestsReachTheSpy() throws {
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        XCTAssertEqual(try connection.readResponse().bodyString, "spy")
        try connection.send(
            "POST /ok2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().bodyString, "spy")
        try spy.waitForRequests(2)
        XCTAssertTrue(spy.receivedString.contains("POST /ok HTTP/1.1\r\n"))
        XCTAssertTrue(spy.receivedString.contains("5\r\nhello\r\n0\r\n\r\n"))
    }

    // MARK: Helpers

    /// Sends `request` on a fresh connection and asserts: the proxy answers `status`, closes the connection, and the
    /// spy got nothing (`headMayReachBackend`: no complete request and no byte of a `/smuggled` request). "Nothing"
    /// is checked once a follow-up request on a new connection has reached the spy (`SpyBackend.followUp`).
    private func assertRejected(
        _ request: String, status: Int, _ label: String = "", headMayReachBackend: Bool = false,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let context = label.isEmpty ? request.prefix(60).debugDescription : label
        let mark = spy.mark()
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        defer { connection.close() }
        try connection.send(Array(request.utf8))
        do {
            let response = try connection.readResponse(timeout: 3)
            XCTAssertEqual(response.status, status, "\(context): \(response.reason)", file: file, line: line)
            XCTAssertTrue(
                connection.isClosedByPeer(timeout: 2), "\(context): connection must close after a \(status)",
                file: file, line: line)
            XCTAssertTrue(
                connection.unconsumedBytes.isEmpty,
                "\(context): bytes after the error response: \(connection.unconsumedBytes.debugText)", file: file,
                line: line)
        } catch {
            XCTFail("\(context): expected \(status), got \(error)", file: file, line: line)
        }
        let arrived = try spy.followUp(since: mark, proxyPort: proxy.proxyPort)
        if headMayReachBackend {
            XCTAssertEqual(
                arrived.requests.count, 0, "\(context): the backend received a complete request: \(arrived)",
                file: file, line: line)
        } else {
            XCTAssertTrue(
                arrived.isEmpty, "\(context): the proxy forwarded something to the backend: \(arrived)", file: file,
                line: line)
        }
        XCTAssertFalse(
            String(decoding: arrived.bytes, as: UTF8.self).contains("smuggled"),
            "\(context): smuggled request reached the backend", file: file, line: line)
    }
}

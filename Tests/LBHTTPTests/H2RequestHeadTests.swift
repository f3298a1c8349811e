import XCTest

@testable import LBHTTP

/// The HTTP/1.1 head an HTTP/2 request's fields stand for (RFC 9113 §8.2, §8.3.1): what is refused as malformed,
/// what is answered with a status, and the exact bytes the HTTP/1.1 parser is given for the rest.
final class H2RequestHeadTests: XCTestCase {
    private let base = [(":method", "GET"), (":scheme", "https"), (":path", "/a?b=1"), (":authority", "lb.test")]

    private func build(_ fields: [(String, String)], hasBody: Bool = false) -> (H2RequestHead.Failure?, HTTPHead) {
        var head = H2RequestHead()
        head.reset()
        for (n, v) in fields {
            Array(n.utf8).withUnsafeBytes { name in Array(v.utf8).withUnsafeBytes { head.add(name: name, value: $0) } }
        }
        var parser = HTTPParser(kind: .request)
        let failure = head.finish(hasBody: hasBody, parser: &parser)
        return (failure, parser.head)
    }

    private func text(_ fields: [(String, String)], hasBody: Bool = false) -> String? {
        let (failure, head) = build(fields, hasBody: hasBody)
        XCTAssertNil(failure)
        return failure == nil ? String(decoding: head.bytes, as: UTF8.self) : nil
    }

    func testAPlainRequestBecomesAnOriginFormHeadWithHostFromAuthority() {
        XCTAssertEqual(
            text(base + [("accept", "*/*")]), "GET /a?b=1 HTTP/1.1\r\nHost: lb.test\r\naccept: */*\r\n\r\n")
    }

    func testCookieCrumbsAreJoinedIntoOneField() {
        XCTAssertEqual(
            text(base + [("cookie", "a=1"), ("x", "y"), ("cookie", "b=2")]),
            "GET /a?b=1 HTTP/1.1\r\nHost: lb.test\r\nx: y\r\nCookie: a=1; b=2\r\n\r\n")
    }

    func testABodyIsFramedByItsContentLengthOrChunked() {
        let post = [(":method", "POST")] + base.dropFirst()
        XCTAssertEqual(
            text(post + [("content-length", "3")], hasBody: true),
            "POST /a?b=1 HTTP/1.1\r\nHost: lb.test\r\ncontent-length: 3\r\n\r\n")
        XCTAssertEqual(
            text(post, hasBody: true), "POST /a?b=1 HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        let (_, head) = build(post, hasBody: true)
        XCTAssertEqual(head.framing, .chunked)
    }

    func testTeTrailersAndExpectAreNotForwarded() {
        XCTAssertEqual(
            text(base + [("te", "trailers"), ("expect", "100-continue")]), "GET /a?b=1 HTTP/1.1\r\nHost: lb.test\r\n\r\n")
    }

    func testExpect100ContinueIsRememberedForTheInterimResponse() {
        func expects(_ fields: [(String, String)]) -> Bool {
            var head = H2RequestHead()
            head.reset()
            for (n, v) in fields {
                Array(n.utf8).withUnsafeBytes { name in
                    Array(v.utf8).withUnsafeBytes { head.add(name: name, value: $0) }
                }
            }
            return head.expectsContinue
        }
        XCTAssertTrue(expects(base + [("expect", "100-continue")]))
        XCTAssertTrue(expects(base + [("expect", "100-Continue")]), "the expectation is case-insensitive")
        XCTAssertFalse(expects(base + [("expect", "100-continued")]))
        XCTAssertFalse(expects(base))
    }

    func testMalformedRequestsAreRefused() {
        let cases: [(String, [(String, String)])] = [
            ("uppercase name", base + [("Accept", "x")]),
            ("connection", base + [("connection", "close")]),
            ("keep-alive", base + [("keep-alive", "1")]),
            ("transfer-encoding", base + [("transfer-encoding", "chunked")]),
            ("upgrade", base + [("upgrade", "h2c")]),
            ("te gzip", base + [("te", "gzip")]),
            ("pseudo after regular", [base[0], base[1], ("x", "y"), base[2]]),
            ("unknown pseudo", base + [(":protocol", "websocket")]),
            ("duplicate path", base + [(":path", "/b")]),
            ("no path", Array(base.prefix(2))),
            ("scheme ftp", [base[0], (":scheme", "ftp"), base[2], base[3]]),
            ("relative path", [base[0], base[1], (":path", "a"), base[3]]),
            ("asterisk for GET", [base[0], base[1], (":path", "*"), base[3]]),
            ("method not a token", [(":method", "G T")] + base.dropFirst()),
            ("CR in a value", base + [("x", "a\rb")]),
            ("LF in a value", base + [("x", "a\nb")]),
            ("NUL in a value", base + [("x", "a\0b")]),
            ("value starting with SP", base + [("x", " a")]),
            ("value ending with HTAB", base + [("x", "a\t")]),
            ("value of one SP", base + [("x", " ")]),
            ("authority ending with SP", [base[0], base[1], base[2], (":authority", "lb.test ")]),
            ("two content-lengths", base + [("content-length", "1"), ("content-length", "1")]),
            ("content-length not digits", base + [("content-length", "1x")]),
            ("content-length without body", base + [("content-length", "4")]),
        ]
        for (name, fields) in cases {
            XCTAssertEqual(build(fields).0, .malformed, name)
        }
    }

    func testUnforwardableAuthoritiesGet400AndConnectGets405() {
        XCTAssertEqual(build([base[0], base[1], base[2], (":authority", "user@lb.test")]).0, .status(400))
        XCTAssertEqual(build([base[0], base[1], base[2], (":authority", "lb test")]).0, .status(400))
        XCTAssertEqual(build(base + [("host", "other.test")]).0, .status(400))
        XCTAssertEqual(build(Array(base.prefix(3))).0, .status(400), "no authority and no host")
        XCTAssertEqual(build([base[0], base[1], base[2], (":authority", "")]).0, .status(400), "an empty authority")
        XCTAssertEqual(build(Array(base.prefix(3)) + [("host", "")]).0, .status(400), "an empty host")
        XCTAssertNil(build(base + [("x", "a b"), ("y", "")]).0, "whitespace inside a value, and an empty value")
        XCTAssertNil(build(base + [("host", "lb.test")]).0, "a host equal to :authority is fine")
        XCTAssertEqual(build([(":method", "CONNECT"), (":authority", "lb.test:443")]).0, .status(405))
        XCTAssertEqual(
            text(Array(base.prefix(3)) + [("host", "h.test")]), "GET /a?b=1 HTTP/1.1\r\nHost: h.test\r\n\r\n")
    }

    func testOptionsAsteriskIsAllowed() {
        XCTAssertEqual(
            text([(":method", "OPTIONS"), base[1], (":path", "*"), base[3]]), "OPTIONS * HTTP/1.1\r\nHost: lb.test\r\n\r\n")
    }

    /// The composed head skips the line scan, not the parser's limits: the same statuses as over HTTP/1.1.
    func testTheParsersLimitsStillApply() {
        func failure(_ fields: [(String, String)], _ limits: HTTPLimits) -> H2RequestHead.Failure? {
            var head = H2RequestHead()
            for (n, v) in fields {
                Array(n.utf8).withUnsafeBytes { name in Array(v.utf8).withUnsafeBytes { head.add(name: name, value: $0) } }
            }
            var parser = HTTPParser(kind: .request, limits: limits)
            return head.finish(hasBody: false, parser: &parser)
        }
        let fields = (0..<5).map { ("x-\($0)", "v") }
        // Host plus five fields: six field lines.
        XCTAssertEqual(failure(base + fields, HTTPLimits(maxHeaderCount: 5)), .status(431))
        XCTAssertNil(failure(base + fields, HTTPLimits(maxHeaderCount: 6)))
        XCTAssertEqual(failure(base + [("x", String(repeating: "a", count: 200))], HTTPLimits(maxHeaderBytes: 200)),
                       .status(431))
        // "GET /a?b=1 HTTP/1.1" is 19 bytes.
        XCTAssertEqual(failure(base, HTTPLimits(maxRequestLine: 18)), .status(414))
        XCTAssertNil(failure(base, HTTPLimits(maxRequestLine: 19)))
    }

    /// A parser reset for a reused stream parses the next composed head as a new one would.
    func testAResetParserTakesTheNextHead() {
        var head = H2RequestHead()
        var parser = HTTPParser(kind: .request)
        for path in ["/first", "/second"] {
            head.reset()
            parser.reset()
            for (n, v) in [(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "a")] {
                Array(n.utf8).withUnsafeBytes { name in Array(v.utf8).withUnsafeBytes { head.add(name: name, value: $0) } }
            }
            XCTAssertNil(head.finish(hasBody: false, parser: &parser))
            XCTAssertEqual(String(decoding: parser.head.bytes, as: UTF8.self), "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(parser.head.fields.count, 1)
        }
    }

    func testResetReusesTheBuilderForTheNextRequest() {
        var head = H2RequestHead()
        Array("Bad".utf8).withUnsafeBytes { n in Array("v".utf8).withUnsafeBytes { head.add(name: n, value: $0) } }
        XCTAssertEqual(head.failure, .malformed)
        head.reset()
        XCTAssertNil(head.failure)
    }
}

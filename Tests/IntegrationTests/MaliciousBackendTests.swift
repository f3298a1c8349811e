import Foundation
import XCTest

/// A backend that answers with badly framed or hostile responses: the client gets a 502 (or, once the response is
/// already streaming, a visibly cut-short one), never the backend's ambiguous bytes, and the next request on the same
/// client connection gets its own, correct answer over a fresh upstream connection.
///
/// One `SpyBackend` serves every path; its reply depends on the path, so "bad" and "good" requests can share it (the
/// proxy routes by path hash, and with one backend every path goes to it).
final class MaliciousBackendTests: IntegrationTestCase {
    /// Replies by request path. `/good` (and anything unknown) gets `SpyBackend.okResponse`.
    private static let replies: [String: String] = [
        "/cl-and-te": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "/two-cl": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello",
        "/cl-list": "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
        "/garbage": "this is not HTTP at all\r\n\r\n",
        "/bad-status": "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        "/http2-status": "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "/te-gzip": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "/obs-fold": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: a\r\n b\r\n\r\nabc",
        "/extra": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
            + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Injected: yes\r\n\r\nevil",
        "/no-content-with-body": "HTTP/1.1 204 No Content\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Injected: yes\r\n\r\nevil",
        "/head-with-body": "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
        "/fake-101": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "/upgrade-refused": "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno",
    ]

    private static func reply(to request: [UInt8]) -> [UInt8] {
        let line = String(decoding: request.prefix(200), as: UTF8.self)
        let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        return Array((replies[path] ?? String(decoding: SpyBackend.okResponse, as: UTF8.self)).utf8)
    }

    /// `retries.max: 0` isolates the response checks from the retry policy (see
    /// `testInvalidResponseFromTheOnlyBackendIs502EvenWithRetriesLeft` for the default policy); passive failures off
    /// so a run of bad responses does not mark the only backend down (that would turn later answers into 503s).
    private static var isolated: [String: Any] {
        [
            "retries": ["max": 0], "health_check": ["enabled": false, "passive_failures": 0],
        ]
    }

    private func startSpyAndProxy(settings: [String: Any] = isolated, closeAfterReply: Bool = false)
        throws -> (SpyBackend, LBServerProcess)
    {
        let spy = try SpyBackend(
            reply: .custom { request, _ in MaliciousBackendTests.reply(to: request) }, closeAfterReply: closeAfterReply)
        return (spy, try startProxy(backends: [spy.address], settings: settings))
    }

    func testBadlyFramedResponsesBecome502AndTheConnectionServesTheNextRequest() throws {
        let (spy, proxy) = try startSpyAndProxy()
        for path in [
            "/cl-and-te", "/two-cl", "/cl-list", "/garbage", "/bad-status", "/http2-status", "/te-gzip",
            "/obs-fold",
        ] {
            let connection = try RawHTTPConnection(port: proxy.proxyPort)
            defer { connection.close() }
            try connection.send("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
            let bad = try connection.readResponse()
            XCTAssertEqual(bad.status, 502, "\(path): \(bad.raw.debugText)")
            XCTAssertNil(bad.header("X-Backend"), "\(path): the backend's head leaked: \(bad.raw.debugText)")

            try connection.send("GET /good HTTP/1.1\r\nHost: a\r\n\r\n")
            let next = try connection.readResponse()
            XCTAssertEqual(next.status, 200, path)
            XCTAssertEqual(next.bodyString, "spy", path)
            // The bad response may come on a pooled connection that served earlier requests; nothing may follow it.
            let servedBad = spy.bytesPerConnection.map { String(decoding: $0, as: UTF8.self) }
                .filter { $0.contains("GET \(path) ") }
            XCTAssertEqual(servedBad.count, 1, path)
            let after = servedBad.first?.components(separatedBy: "GET \(path) ").last ?? ""
            XCTAssertFalse(
                after.contains("GET "), "\(path): the upstream connection that sent a bad response was used again")
        }
    }

    func testBytesAfterADeclaredBodyNeverReachTheClient() throws {
        let (spy, proxy) = try startSpyAndProxy()
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /extra HTTP/1.1\r\nHost: a\r\n\r\n")
        let first = try connection.readResponse()
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.bodyString, "first")

        try connection.send("GET /good HTTP/1.1\r\nHost: a\r\n\r\n")
        let next = try connection.readResponse()
        XCTAssertEqual(next.bodyString, "spy", "the injected response was served: \(next.raw.debugText)")
        XCTAssertNil(next.header("X-Injected"))
        XCTAssertEqual(spy.connectionCount, 2, "an upstream connection with trailing garbage must be discarded")
        try assertKeepAliveStaysInSync(connection)
    }

    /// A body after a 204, or after the head of a response to HEAD, is not part of that response (RFC 9112 §6.3):
    /// it must neither reach the client nor be read as the next response.
    func testBodiesWhereNoneIsAllowedNeverReachTheClient() throws {
        let (spy, proxy) = try startSpyAndProxy()
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /no-content-with-body HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().status, 204)
        try connection.send("HEAD /head-with-body HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try connection.readResponse(headRequest: true)
        XCTAssertEqual(head.header("Content-Length"), "4")
        try connection.send("GET /good HTTP/1.1\r\nHost: a\r\n\r\n")
        let next = try connection.readResponse()
        XCTAssertEqual(next.bodyString, "spy", "a smuggled response was served: \(next.raw.debugText)")
        XCTAssertNil(next.header("X-Injected"))
        try assertKeepAliveStaysInSync(connection)
        for bad in ["/no-content-with-body", "/head-with-body"] {
            let conn = spy.bytesPerConnection.map { String(decoding: $0, as: UTF8.self) }.first { $0.contains(bad) }
            let after = conn?.components(separatedBy: bad).last ?? ""
            XCTAssertFalse(
                after.contains("\r\n\r\nGET ") || after.contains("\r\n\r\nHEAD "),
                "\(bad): its upstream connection was reused after trailing bytes")
        }
    }

    /// RFC 9110 §15.2.2: a server must not switch protocols for a request that did not ask to. A proxy that
    /// believes an unsolicited 101 opens a raw tunnel through which the client reaches the backend unchecked
    /// (WebSocket smuggling). The proxy must refuse it (502) and keep parsing what the client sends next.
    func testUnsolicited101DoesNotOpenATunnel() throws {
        let (spy, proxy) = try startSpyAndProxy()
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /fake-101 HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try connection.readResponse()
        XCTAssertEqual(response.status, 502, "an unsolicited 101 was passed on: \(response.raw.debugText)")
        let raw = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        try connection.send(raw)
        // Parsed or tunnelled, the spy answers it; it records a request before answering, so once the answer is
        // here the spy's record says which it was.
        XCTAssertEqual(try connection.readResponse().bodyString, "spy")
        XCTAssertFalse(spy.receivedString.contains(raw), "the client's bytes went through a tunnel unparsed")
        let smuggled = spy.requests.map { String(decoding: $0, as: UTF8.self) }
            .filter { $0.hasPrefix("GET /smuggled ") }
        XCTAssertEqual(smuggled.count, 1, spy.receivedString)
        XCTAssertTrue(
            smuggled.first?.contains("X-Request-ID: ") ?? false, "not parsed by the proxy: \(smuggled.first ?? "")")
        let after101 = spy.bytesPerConnection.map { String(decoding: $0, as: UTF8.self) }
            .first { $0.contains("GET /fake-101 ") }?.components(separatedBy: "GET /fake-101 ").last ?? ""
        XCTAssertFalse(after101.contains("GET "), "the upstream connection that sent the 101 was used again")
    }

    /// An upgrade the backend refuses (426) leaves the connection in HTTP: the next request is parsed and
    /// forwarded as a request (it gets the proxy's X-Request-ID), not tunnelled.
    func testRefusedUpgradeKeepsTheConnectionInHTTP() throws {
        let (spy, proxy) = try startSpyAndProxy()
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send(
            "GET /upgrade-refused HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        let refused = try connection.readResponse()
        XCTAssertEqual(refused.status, 426)
        XCTAssertEqual(refused.bodyString, "no")
        try connection.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().bodyString, "spy")
        let next = spy.requests.map { String(decoding: $0, as: UTF8.self) }.first { $0.hasPrefix("GET /next ") }
        XCTAssertNotNil(next, spy.receivedString)
        XCTAssertTrue(
            next?.contains("X-Request-ID: ") ?? false, "the request was not parsed by the proxy: \(next ?? "")")
    }

    func testTruncatedContentLengthBodyIsNeverPresentedAsComplete() throws {
        try assertTruncatedResponseIsCutShort(
            path: "/truncated-cl", reply: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
    }

    func testTruncatedChunkedBodyIsNeverPresentedAsComplete() throws {
        try assertTruncatedResponseIsCutShort(
            path: "/truncated-chunked", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
    }

    func testBackendClosingBeforeAnyResponseIs502() throws {
        let spy = try SpyBackend(reply: .custom { _, _ in [] }, closeAfterReply: true)
        let proxy = try startProxy(backends: [spy.address], settings: Self.isolated)
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().status, 502)
    }

    /// With the default retry policy, a GET whose only backend answered garbage has nowhere else to go: the client
    /// must learn the backend failed (502), not that no backend exists (503).
    func testInvalidResponseFromTheOnlyBackendIs502EvenWithRetriesLeft() throws {
        let (_, proxy) = try startSpyAndProxy(settings: [:])
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /garbage HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try connection.readResponse()
        XCTAssertEqual(response.status, 502, "\(response.raw.debugText)")
    }

    // MARK: Helpers

    /// The client connection is still open and in step: one more request gets the spy's own answer, not bytes
    /// left over from an earlier response (the proxy writes to a client in order, so anything it queued before
    /// would be read first). Instead of waiting a fixed time to see that the connection stays open and quiet.
    private func assertKeepAliveStaysInSync(_ connection: RawHTTPConnection, line: UInt = #line) throws {
        try connection.send("GET /good-again HTTP/1.1\r\nHost: a\r\n\r\n")
        let again = try connection.readResponse()
        XCTAssertEqual(again.bodyString, "spy", "keep-alive out of step: \(again.raw.debugText)", line: line)
        XCTAssertNil(again.header("X-Injected"), line: line)
        XCTAssertTrue(
            connection.unconsumedBytes.isEmpty, "extra bytes: \(connection.unconsumedBytes.debugText)", line: line)
    }

    /// The backend sends `reply` and closes mid-body. Once the head is out, the proxy cannot turn it into a 502, so
    /// either the client gets a 502 or a response that visibly ends early (connection closed before the framing says
    /// the body is done); never a complete-looking response. A fresh connection then works.
    private func assertTruncatedResponseIsCutShort(path: String, reply: String, line: UInt = #line) throws {
        let spy = try SpyBackend(
            reply: .custom { request, _ in
                String(decoding: request.prefix(100), as: UTF8.self).hasPrefix("GET \(path) ")
                    ? Array(reply.utf8) : SpyBackend.okResponse
            }, closeAfterReply: true)
        let proxy = try startProxy(backends: [spy.address], settings: Self.isolated)
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
        do {
            let response = try connection.readResponse()
            XCTAssertEqual(response.status, 502, "complete-looking response: \(response.raw.debugText)", line: line)
        } catch HarnessError.closedBeforeComplete(let partial) {
            print("\(path): client saw \(partial.count) bytes, then the connection closed (cut short, as required)")
        }
        XCTAssertTrue(connection.isClosedByPeer(timeout: 2), line: line)

        let fresh = try RawHTTPConnection(port: proxy.proxyPort)
        try fresh.send("GET /good HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try fresh.readResponse().bodyString, "spy", line: line)
    }
}

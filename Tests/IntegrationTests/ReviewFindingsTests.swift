import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Reproductions of data-path bugs found in review. Each test fails on the code it was written against.
final class ReviewFindingsTests: IntegrationTestCase {
    /// ClientConnection.didReadEnd treats EOF in phase `.connecting` like a broken request and closes, although a
    /// body-less request is already complete there (the parser just has not been fed its `.end` yet). A client that
    /// sends a GET and then `shutdown(SHUT_WR)` gets no response whenever no pooled connection is idle.
    func testHalfCloseRightAfterCompleteRequestStillGetsTheResponseOnAFreshUpstream() throws {
        let spy = try SpyBackend()
        let proxy = try startProxy(backends: [spy.address])
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /half HTTP/1.1\r\nHost: a\r\n\r\n")
        connection.shutdownWrite()
        let response = try connection.readResponse(timeout: 3)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.bodyString, "spy")
    }

    /// After the keep-alive race replay (or a retry), `sendHead` sets phase `.body` and runs the parser again although
    /// the request already ended: a pipelined request waiting in `pending` has its head swallowed by `case .head:
    /// return pos` in `process` and is never dispatched; the client waits until the idle timeout.
    func testPipelinedRequestSurvivesAKeepAliveRaceReplayOfThePreviousOne() throws {
        // Every reply looks keep-alive (no Connection: close) but the backend closes right after it: the proxy pools
        // the connection and, for the pipelined request, reuses it before it has read the FIN.
        let spy = try SpyBackend(reply: .perRequest(SpyBackend.okResponse), closeAfterReply: true)
        let proxy = try startProxy(backends: [spy.address])
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send(
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
        for i in 1...3 {
            do {
                let response = try connection.readResponse(timeout: 3)
                XCTAssertEqual(response.status, 200, "response \(i)")
            } catch {
                XCTFail("response \(i) of 3 never came (backend saw \(spy.requestCount) requests): \(error)")
                return
            }
        }
        let paths = spy.requests.map { String(decoding: $0, as: UTF8.self).split(separator: " ")[1] }
        XCTAssertEqual(paths.filter { $0 == "/3" }.count, 1, "backend saw \(paths)")
    }

    /// Same hole through the retry path: an idempotent request whose first backend closes without answering is
    /// retried on the next one, and the pipelined request behind it is lost.
    func testPipelinedRequestSurvivesARetryOfThePreviousOne() throws {
        let dead = try SpyBackend(reply: .custom { _, _ in [] }, closeAfterReply: true)
        let good = try SpyBackend()
        let proxy = try startProxy(backends: [dead.address, good.address])
        // Find a path routed to the dead backend first.
        var firstPath: String?
        for i in 0..<64 {
            let c = try RawHTTPConnection(port: proxy.proxyPort)
            let before = dead.connectionCount
            try c.send("GET /probe\(i) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            _ = try c.readResponse(timeout: 3)
            c.close()
            if dead.connectionCount > before {
                firstPath = "/probe\(i)"
                break
            }
        }
        let path = try XCTUnwrap(firstPath)
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send(
            "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n" + "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try connection.readResponse(timeout: 3).status, 200)
        XCTAssertEqual(try connection.readResponse(timeout: 3).status, 200, "the pipelined request was dropped")
    }

    /// Once a response head is in, neither side has any deadline (`UpstreamConnection.didRead` enters `.none` and
    /// nothing re-arms): a backend that stops in the middle of a body holds the client and the upstream connection
    /// forever.
    func testBackendStallingInTheMiddleOfABodyIsCutOffByATimeout() throws {
        let spy = try SpyBackend(
            reply: .perRequest(Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc".utf8)))
        let proxy = try startProxy(
            backends: [spy.address],
            settings: ["timeouts": ["upstream_response": "500ms", "client_idle": "500ms"], "retries": ["max": 0]])
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /stall HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertTrue(
            connection.isClosedByPeer(timeout: 5), "still open 5 s after the backend stalled (500 ms timeouts)")
    }

    /// The response head and body bytes are only appended to the client's `out`: nothing flushes them until the
    /// queue passes `highWater` (then 256 KiB) or the response ends (ClientConnection.responseHead/responseBody). A
    /// streamed response (SSE, long poll, progress output, a slow download) reaches the client only at its end.
    func testStreamedResponseBytesReachTheClientBeforeTheResponseEnds() throws {
        let spy = try SpyBackend(
            reply: .perRequest(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".utf8)))
        let proxy = try startProxy(backends: [spy.address])
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
        let got = try? connection.readRaw(count: 12, timeout: 2)
        XCTAssertNotNil(got, "no byte of the streamed response arrived within 2 s")
        if let got { XCTAssertTrue(String(decoding: got, as: UTF8.self).hasPrefix("HTTP/1.1 200")) }
    }
}

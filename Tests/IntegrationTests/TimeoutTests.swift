import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The proxy's deadlines with short configured values: a slow client head gets 408, an idle keep-alive client is
/// closed, a silent backend turns into 504, a backend that never completes the TCP handshake into a timeout.
/// Deadlines are checked by a periodic sweep (a quarter of the shortest timeout, at least 50 ms), hence the slack.
final class TimeoutTests: IntegrationTestCase {
    /// Slack on top of a configured timeout before the test calls it late.
    private static let slack: TimeInterval = 1.0

    // MARK: Client side

    func testSlowlorisHeadGets408AndCloseAfterClientHeaderTimeout() throws {
        let spy = try SpyBackend()
        let proxy = try startProxy(backends: [spy.address], settings: ["timeouts": ["client_header": "500ms"]])
        let mark = spy.mark()
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        let started = Date()
        try connection.send("GET /slow HTTP/1.1\r\nHost: a\r\nX-Half: ")
        let response = try connection.readResponse(timeout: 0.5 + Self.slack)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(response.status, 408)
        XCTAssertTrue(connection.isClosedByPeer(timeout: 0.5))
        XCTAssertGreaterThanOrEqual(elapsed, 0.45, "408 before the configured 500 ms")
        XCTAssertLessThan(elapsed, 0.5 + Self.slack)
        let arrived = try spy.followUp(since: mark, proxyPort: proxy.proxyPort)
        XCTAssertTrue(arrived.isEmpty, "an incomplete head must not reach the backend: \(arrived)")
    }

    func testTricklingHeadBytesDoesNotExtendTheHeaderDeadline() throws {
        let spy = try SpyBackend()
        let proxy = try startProxy(backends: [spy.address], settings: ["timeouts": ["client_header": "500ms"]])
        let mark = spy.mark()
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        let started = Date()
        try connection.send("GET /slow HTTP/1.1\r\n")
        // One header byte every 100 ms (the sleep is the slow client): each read is progress, but the head as a
        // whole is late.
        var closed = false
        for byte in Array("X-Trickle: abcdefghijklmnopqrstuvwxyz".utf8) {
            Thread.sleep(forTimeInterval: 0.1)
            if (try? connection.send([byte])) == nil {
                closed = true
                break
            }
            if Date().timeIntervalSince(started) > 0.5 + Self.slack { break }
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertTrue(closed || connection.isClosedByPeer(timeout: 0.1), "still open after \(elapsed) s of trickling")
        XCTAssertLessThan(elapsed, 0.5 + Self.slack + 0.2)
        let arrived = try spy.followUp(since: mark, proxyPort: proxy.proxyPort)
        XCTAssertTrue(arrived.isEmpty, "an incomplete head must not reach the backend: \(arrived)")
    }

    func testIdleKeepAliveClientIsClosedAfterClientIdleTimeout() throws {
        let spy = try SpyBackend()
        let proxy = try startProxy(backends: [spy.address], settings: ["timeouts": ["client_idle": "500ms"]])
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().bodyString, "spy")
        let started = Date()
        XCTAssertTrue(connection.isClosedByPeer(timeout: 0.5 + Self.slack), "idle keep-alive connection left open")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 0.45)
        XCTAssertTrue(
            connection.unconsumedBytes.isEmpty, "an idle close sends nothing: \(connection.unconsumedBytes.debugText)")

        let silent = try RawHTTPConnection(port: proxy.proxyPort)
        XCTAssertTrue(
            silent.isClosedByPeer(timeout: 0.5 + Self.slack), "a connection that never sent a byte stays open")
        XCTAssertTrue(silent.unconsumedBytes.isEmpty)
    }

    // MARK: Upstream side

    func testSilentBackendGives504AfterUpstreamResponseTimeout() throws {
        try assertSilentBackendGives504(settings: [
            "timeouts": ["upstream_response": "500ms"], "retries": ["max": 0],
        ])
    }

    func testSilentBackendGives504AfterPerTryTimeout() throws {
        try assertSilentBackendGives504(settings: [
            "timeouts": ["upstream_response": "30s"], "retries": ["max": 0, "per_try_timeout": "500ms"],
        ])
    }

    /// Default retry policy, one backend: the retry has nowhere to go, so the client must still learn that the
    /// backend timed out (504), not that no backend exists (503).
    func testSilentOnlyBackendGives504EvenWithRetriesLeft() throws {
        try assertSilentBackendGives504(settings: ["timeouts": ["upstream_response": "500ms"]])
    }

    /// A backend whose accept queue is full: Linux drops further SYNs (with `tcp_abort_on_overflow` 0, the default),
    /// so the proxy's connect hangs until `upstream_connect` expires. Skipped if the kernel completes the handshake
    /// anyway (then a connect timeout cannot be provoked on loopback).
    func testBackendThatNeverAcceptsGives504AfterUpstreamConnectTimeout() throws {
        let listener = try LoopbackSocket.listen(backlog: 0)
        var fillers: [Int32] = []
        defer {
            for fd in fillers { Glibc.close(fd) }
            Glibc.close(listener.fd)
        }
        for _ in 0..<4 {
            if let fd = try? LoopbackSocket.connect(port: listener.port, timeout: 0.3) { fillers.append(fd) }
        }
        if let probe = try? LoopbackSocket.connect(port: listener.port, timeout: 0.5) {
            Glibc.close(probe)
            throw XCTSkip(
                "the kernel still completes handshakes on a full accept queue; no connect timeout on loopback")
        }
        let proxy = try startProxy(
            backends: ["127.0.0.1:\(listener.port)"],
            settings: ["timeouts": ["upstream_connect": "300ms"], "retries": ["max": 0]])
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        let started = Date()
        try connection.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try connection.readResponse(timeout: 0.3 + Self.slack + 1)
        let elapsed = Date().timeIntervalSince(started)
        print("connect timeout: \(response.status) after \(String(format: "%.2f", elapsed)) s")
        XCTAssertEqual(response.status, 504, response.raw.debugText)
        XCTAssertGreaterThanOrEqual(elapsed, 0.25)
        XCTAssertLessThan(elapsed, 0.3 + Self.slack)
    }

    // MARK: Helpers

    private func assertSilentBackendGives504(settings: [String: Any], line: UInt = #line) throws {
        let spy = try SpyBackend(reply: .silent)
        let proxy = try startProxy(backends: [spy.address], settings: settings)
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        let started = Date()
        try connection.send("GET /never HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try connection.readResponse(timeout: 0.5 + Self.slack + 1)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(response.status, 504, response.raw.debugText, line: line)
        XCTAssertGreaterThanOrEqual(elapsed, 0.45, line: line)
        XCTAssertLessThan(elapsed, 0.5 + Self.slack, line: line)
        try spy.waitForRequests(1)
        // A timed-out request leaves the client connection usable (the request itself was complete).
        try connection.send("GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
        let again = try connection.readResponse(timeout: 0.5 + Self.slack + 1)
        XCTAssertEqual(again.status, 504, again.raw.debugText, line: line)
    }
}

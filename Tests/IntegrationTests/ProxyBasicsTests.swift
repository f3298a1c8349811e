import Foundation
import XCTest

/// The foundation's promises, over real loopback sockets: the real `lb-server` in front of real
/// `lb-demo-backend` processes.
final class ProxyBasicsTests: IntegrationTestCase {
    private func startThree(delayMs: Int? = nil) throws -> [DemoBackend] {
        try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)", delayMs: delayMs) }
    }

    func testSamePathAlwaysReachesTheSameBackend() throws {
        let backends = try startThree()
        let lb = try LBBinaries.startServer(backends: backends.map(\.address))
        for i in 0..<20 {
            let path = "/item/\(i)"
            let first = try HTTPClient.get(port: lb.proxyPort, path: path).header("X-Backend")
            XCTAssertNotNil(first)
            for _ in 0..<3 {
                XCTAssertEqual(try HTTPClient.get(port: lb.proxyPort, path: path).header("X-Backend"), first, path)
            }
        }
    }

    func testEveryBackendIsUsedOverManyPaths() throws {
        let backends = try startThree()
        let lb = try LBBinaries.startServer(backends: backends.map(\.address))
        let conn = try RawHTTPConnection(port: lb.proxyPort)
        var counts: [String: Int] = [:]
        for i in 0..<300 {
            try conn.send("GET /k/\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try conn.readResponse()
            XCTAssertEqual(r.status, 200)
            counts[r.header("X-Backend") ?? "?", default: 0] += 1
        }
        XCTAssertEqual(Set(counts.keys), ["b1", "b2", "b3"], "\(counts)")
        for (name, n) in counts { XCTAssertGreaterThan(n, 40, "\(name) got only \(n) of 300: \(counts)") }
    }

    func testKeepAliveIsReusedOnBothSides() throws {
        let backend = try LBBinaries.startDemoBackend(name: "only")
        let lb = try LBBinaries.startServer(backends: [backend.address])
        let conn = try RawHTTPConnection(port: lb.proxyPort)
        var upstreamConnections = Set<String>()
        // 25 exchanges on one client connection: each answer shows it stayed open after the one before.
        for i in 0..<25 {
            try conn.send("GET /reuse/\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try conn.readResponse()
            XCTAssertEqual(r.status, 200)
            XCTAssertNil(r.header("Connection"), "client keep-alive must stay on")
            upstreamConnections.insert(r.header("X-Connection") ?? "?")
        }
        XCTAssertEqual(upstreamConnections.count, 1, "one pooled upstream connection served every request: \(upstreamConnections)")
        // A second client reuses the pooled upstream connection too (pools are per worker: with several
        // workers the kernel may hand the second client to another one).
        let r = try HTTPClient.get(port: lb.proxyPort, path: "/another")
        if (ProcessInfo.processInfo.environment["LB_TEST_WORKERS"] ?? "1") == "1" {
            XCTAssertEqual(upstreamConnections, [r.header("X-Connection") ?? "?"])
        }
    }

    func testLargePostBodyArrivesIntact() throws {
        let backend = try LBBinaries.startDemoBackend(name: "d")
        let lb = try LBBinaries.startServer(backends: [backend.address])
        var body = [UInt8](repeating: 0, count: 6 * 1024 * 1024 + 17)
        var x: UInt32 = 2_463_534_242
        for i in body.indices {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            body[i] = UInt8(truncatingIfNeeded: x)
        }
        let r = try HTTPClient.request(port: lb.proxyPort, method: "POST", path: "/digest", headers: [], body: body)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyString, "sha256=\(Digest.sha256Hex(body)) length=\(body.count)\n")
    }

    func testChunkedResponseArrivesIntact() throws {
        let backend = try LBBinaries.startDemoBackend(name: "c")
        let lb = try LBBinaries.startServer(backends: [backend.address])
        let conn = try RawHTTPConnection(port: lb.proxyPort)
        try conn.send("GET /chunked?size=1000003&chunk=7777 HTTP/1.1\r\nHost: t\r\n\r\n")
        let r = try conn.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Transfer-Encoding")?.lowercased(), "chunked")
        XCTAssertEqual(r.body.count, 1_000_003)
        XCTAssertEqual(r.body, (0..<1_000_003).map { UInt8($0 % 251) })
        // The connection is still usable afterwards.
        try conn.send("GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try conn.readResponse().bodyString, "backend c path=/after\n")
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let backends = try startThree()
        let lb = try LBBinaries.startServer(backends: backends.map(\.address))
        let conn = try RawHTTPConnection(port: lb.proxyPort)
        var batch = ""
        for i in 0..<10 { batch += "GET /pipe/\(i) HTTP/1.1\r\nHost: t\r\n\r\n" }
        batch += "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        batch += "GET /pipe/last HTTP/1.1\r\nHost: t\r\n\r\n"
        try conn.send(batch)
        for i in 0..<10 {
            let r = try conn.readResponse()
            XCTAssertTrue(r.bodyString.hasSuffix("path=/pipe/\(i)\n"), "response \(i): \(r.bodyString)")
        }
        XCTAssertEqual(try conn.readResponse().bodyString, "hello")
        XCTAssertTrue(try conn.readResponse().bodyString.hasSuffix("path=/pipe/last\n"))
    }

    func testRefusedBackendIsSkipped() throws {
        let live = try (1...2).map { try LBBinaries.startDemoBackend(name: "live\($0)") }
        // A port that was free a moment ago: connecting to it is refused.
        let (fd, deadPort) = try LoopbackSocket.listen()
        Glibc.close(fd)
        let lb = try LBBinaries.startServer(backends: live.map(\.address) + ["127.0.0.1:\(deadPort)"])
        var seen = Set<String>()
        for i in 0..<200 {
            let r = try HTTPClient.get(port: lb.proxyPort, path: "/skip/\(i)")
            XCTAssertEqual(r.status, 200, "path /skip/\(i): \(r.bodyString)")
            seen.insert(r.header("X-Backend") ?? "?")
        }
        XCTAssertEqual(seen, ["live1", "live2"])
    }

    func testSigtermCompletesInFlightRequestsAndExitsZero() throws {
        let slow = try LBBinaries.startDemoBackend(name: "slow", delayMs: 800)
        let lb = try LBBinaries.startServer(backends: [slow.address])
        let result = Locked<Result<HTTPResponse, Error>?>(nil)
        let done = expectation(description: "in-flight request finished")
        Thread.detachNewThread {
            let r = Result { try HTTPClient.get(port: lb.proxyPort, path: "/in-flight", timeout: 10) }
            result.withLock { $0 = r }
            done.fulfill()
        }
        try eventually("the request reached the backend") { try self.admitsOneActive(lb) }
        lb.process.signal(SIGTERM)
        wait(for: [done], timeout: 10)
        let response = try XCTUnwrap(result.withLock { $0 }).get()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.bodyString, "backend slow path=/in-flight\n")
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), 0, lb.process.log)
        // New connections are refused once it is gone.
        XCTAssertThrowsError(try HTTPClient.get(port: lb.proxyPort, path: "/late", timeout: 1))
    }

    /// True when the admin API shows an active upstream connection (the request is in flight).
    private func admitsOneActive(_ lb: LBServerProcess) throws -> Bool {
        let r = try HTTPClient.get(port: lb.adminPort, path: "/api/servers")
        return r.bodyString.contains("\"active_connections\":1")
    }

    func testTwoBalancersWithTheSameServersInAnyOrderRouteIdentically() throws {
        let backends = try startThree()
        let a = try LBBinaries.startServer(backends: backends.map(\.address))
        let b = try LBBinaries.startServer(backends: backends.reversed().map(\.address))
        let ca = try RawHTTPConnection(port: a.proxyPort)
        let cb = try RawHTTPConnection(port: b.proxyPort)
        for i in 0..<300 {
            let req = "GET /same/\(i)?q=\(i * 7) HTTP/1.1\r\nHost: t\r\n\r\n"
            try ca.send(req)
            try cb.send(req)
            XCTAssertEqual(try ca.readResponse().header("X-Backend"), try cb.readResponse().header("X-Backend"), "key /same/\(i)")
        }
    }

    func testNoServerAvailableAnswers503WithRetryAfter() throws {
        let (fd, deadPort) = try LoopbackSocket.listen()
        Glibc.close(fd)
        let lb = try LBBinaries.startServer(backends: ["127.0.0.1:\(deadPort)"])
        let conn = try RawHTTPConnection(port: lb.proxyPort)
        try conn.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        let r = try conn.readResponse()
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "1")
        // The client connection survives a proxy-generated error for a complete request.
        try conn.send("GET /y HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try conn.readResponse().status, 503)
    }

    func testMalformedRequestGets400AndTheConnectionCloses() throws {
        let spy = try SpyBackend()
        let lb = try startProxy(backends: [spy.address])  // health checks off: the spy sees only proxied bytes
        let mark = spy.mark()
        let conn = try RawHTTPConnection(port: lb.proxyPort)
        try conn.send("GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
        XCTAssertEqual(try conn.readResponse().status, 400)
        XCTAssertTrue(conn.isClosedByPeer(timeout: 2))
        let arrived = try spy.followUp(since: mark, proxyPort: lb.proxyPort)
        XCTAssertTrue(arrived.isEmpty, "the malformed request reached the backend: \(arrived)")
    }
}

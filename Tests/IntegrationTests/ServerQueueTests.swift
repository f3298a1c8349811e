import Foundation
import XCTest

/// `max_connections` and its queue (HAProxy's `maxconn` / `maxqueue` / `timeout queue`) through the real binary:
/// a backend never holds more requests than its limit, requests over it wait their turn in order and are all
/// answered, a full queue answers 503 at once, and a request that waits `timeouts.queue` gets 503. Every count is
/// read from the backend's side (`InFlightBackend`) and from `/api/stats`. The limit is split between workers,
/// so with 2 workers each holds half of it: the assertions hold for either.
final class ServerQueueTests: IntegrationTestCase {
    private func serverStats(_ lb: LBServerProcess) throws -> [String: Any] {
        let servers = try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json["servers"] as? [[String: Any]]
        return try XCTUnwrap(servers?.first)
    }

    private func queueStats(_ lb: LBServerProcess) throws -> [String: Int] {
        try XCTUnwrap(try serverStats(lb)["queue"] as? [String: Int])
    }

    /// `n` GETs at once, each on its own connection (all sent before any answer is read); the statuses in
    /// order (0: no response).
    private func concurrentGets(_ n: Int, port: Int, timeout: TimeInterval = 15) throws -> [Int] {
        let connections = try (0..<n).map { _ in try RawHTTPConnection(port: port, timeout: timeout) }
        defer { for c in connections { c.close() } }
        let request = Array("GET /same-key HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n".utf8)
        for c in connections { try c.send(request) }
        return connections.map { (try? $0.readResponse().status) ?? 0 }
    }

    func testRequestsOverTheLimitWaitTheirTurnAndTheBackendNeverHoldsMore() throws {
        let backend = try InFlightBackend(holdFor: 0.3)
        let lb = try startProxy(
            backends: [backend.address],
            settings: ["limits": ["server_max_connections": 2, "server_max_queue": 100], "timeouts": ["queue": "20s"]])
        let statuses = try concurrentGets(10, port: lb.proxyPort)
        XCTAssertEqual(statuses, Array(repeating: 200, count: 10), "every request waited its turn and was answered")
        let counts = backend.counts
        XCTAssertEqual(counts.requests, 10)
        XCTAssertLessThanOrEqual(counts.maxInFlightRequests, 2, "the backend never held more than max_connections")
        let queue = try queueStats(lb)
        XCTAssertGreaterThanOrEqual(queue["queued"] ?? 0, 8, "at most 2 went straight through: \(queue)")
        XCTAssertEqual(queue["full"], 0, "\(queue)")
        XCTAssertEqual(queue["timeouts"], 0, "\(queue)")
        XCTAssertEqual(try serverStats(lb)["queue_length"] as? Int, 0, "nobody waits once all are answered")
        // The health of a busy server is not touched: it was never a failure.
        XCTAssertEqual(try serverStats(lb)["state"] as? String, "up")
    }

    func testAFullQueueAnswers503AtOnceAndIsCounted() throws {
        let backend = try InFlightBackend(holdFor: 1.0)
        let lb = try startProxy(
            backends: [backend.address],
            settings: ["limits": ["server_max_connections": 2, "server_max_queue": 0], "timeouts": ["queue": "20s"]])
        let started = Date()
        let statuses = try concurrentGets(8, port: lb.proxyPort)
        let ok = statuses.filter { $0 == 200 }.count
        let busy = statuses.filter { $0 == 503 }.count
        XCTAssertEqual(ok + busy, 8, "each got 200 or 503: \(statuses)")
        XCTAssertTrue((1...2).contains(ok), "no queue: only what fits in max_connections is served: \(statuses)")
        XCTAssertLessThanOrEqual(backend.counts.maxInFlightRequests, 2)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the 503s did not wait")
        let queue = try queueStats(lb)
        XCTAssertEqual(queue["full"], busy, "\(queue)")
        XCTAssertEqual(queue["queued"], 0, "\(queue)")
        let metrics = String(decoding: try AdminClient(port: lb.adminPort).call("GET", "/metrics").response.body, as: UTF8.self)
        XCTAssertTrue(metrics.contains("lb_upstream_queue_full_total{server=\"\(backend.address)\"} \(busy)"), metrics)
    }

    func testARequestThatWaitsTheQueueTimeoutGets503AndTheServerStaysUp() throws {
        let backend = try InFlightBackend(holdFor: 2.0)
        let lb = try startProxy(
            backends: [backend.address],
            settings: ["limits": ["server_max_connections": 1, "server_max_queue": 10], "timeouts": ["queue": "500ms"]])
        // One request per worker fills the limit (each worker's share is at least 1); the others wait and time out.
        let statuses = try concurrentGets(6, port: lb.proxyPort)
        let busy = statuses.filter { $0 == 503 }.count
        XCTAssertEqual(statuses.filter { $0 == 200 }.count + busy, 6, "\(statuses)")
        XCTAssertGreaterThanOrEqual(busy, 4, "all but one per worker waited past timeouts.queue: \(statuses)")
        let queue = try queueStats(lb)
        XCTAssertEqual(queue["timeouts"], busy, "\(queue)")
        XCTAssertEqual(try serverStats(lb)["state"] as? String, "up", "a busy server is not a failing one")
    }

    func testHTTP2StreamsWaitForTheirTurnLikeHTTP11Requests() throws {
        let h2load = try requiredTool("h2load", package: "nghttp2-client")
        let backend = try InFlightBackend(holdFor: 0.2)
        let lb = try startProxy(
            backends: [backend.address],
            settings: ["limits": ["server_max_connections": 3, "server_max_queue": 100], "timeouts": ["queue": "20s"]])
        // 20 streams at once on one h2c connection (prior knowledge): one worker, one queue.
        let load = ManagedProcess.run(
            h2load, ["-n", "20", "-c", "1", "-m", "20", "http://127.0.0.1:\(lb.proxyPort)/same-key"], timeout: 60)
        let out = String(decoding: load.stdout, as: UTF8.self)
        XCTAssertEqual(load.status, 0, load.stderr)
        XCTAssertTrue(out.contains("20 succeeded, 0 failed, 0 errored"), out)
        XCTAssertLessThanOrEqual(backend.counts.maxInFlightRequests, 3, "\(backend.counts)")
        XCTAssertEqual(backend.counts.requests, 20)
        let queue = try queueStats(lb)
        XCTAssertGreaterThanOrEqual(queue["queued"] ?? 0, 17 - 3, "\(queue)")
    }
}

import Foundation
import XCTest

/// The upstream pool follows demand: with ~1,000 requests in flight at once, the connections a burst opened are
/// pooled and carry the next burst (no open-use-close churn, as a fixed cap of 64 idle connections caused), and
/// once demand falls the purge closes the surplus gradually.
final class UpstreamPoolTests: IntegrationTestCase {
    /// Requests in flight at once.
    private let concurrency = 1000
    /// Long enough that every request of a burst is in flight before the first is answered.
    private let backendDelayMs = 600
    /// The purge interval for this test. It must exceed half the time between the end of one burst and the middle
    /// of the next (the purge keeps a burst's peak for two intervals), and keeps the shrinking phase short.
    private let purgeInterval = "1500ms"

    /// The backend's counters in `/api/stats`.
    private struct PoolStats {
        var opened = 0
        var reused = 0
        var idle = 0
        var inUse = 0
        var purged = 0
        var reuseRatio = 0.0
    }

    private func poolStats(_ admin: AdminClient) throws -> PoolStats {
        let servers = try admin.call("GET", "/api/stats").json["servers"] as? [[String: Any]] ?? []
        let s = try XCTUnwrap(servers.first, "one server in /api/stats")
        return PoolStats(
            opened: s["connects_opened"] as? Int ?? -1, reused: s["reused"] as? Int ?? -1,
            idle: s["idle_connections"] as? Int ?? -1, inUse: s["in_use_connections"] as? Int ?? -1,
            purged: s["pool_purged"] as? Int ?? -1, reuseRatio: s["reuse_ratio"] as? Double ?? -1)
    }

    /// One request on every client connection, all sent before any is read; every answer must be a 200.
    private func burst(_ clients: [RawHTTPConnection], round: Int) throws {
        for (i, c) in clients.enumerated() {
            try c.send("GET /pool/\(round)/\(i) HTTP/1.1\r\nHost: pool\r\n\r\n")
        }
        for (i, c) in clients.enumerated() {
            let response = try c.readResponse(timeout: 20)
            guard response.status == 200 else {
                XCTFail("request \(i) of burst \(round): status \(response.status) \(response.bodyString)")
                return
            }
        }
    }

    func testABurstsConnectionsCarryTheNextBurstAndThePoolShrinksOnceDemandFalls() throws {
        let n = concurrency
        // This process holds n client sockets, and the backend (which inherits the limit) n upstream ones.
        try requireOpenFileLimit(n + 512)
        let backend = try LBBinaries.startDemoBackend(name: "slow", delayMs: backendDelayMs)
        let lb = try startProxy(
            backends: [backend.address], settings: ["timeouts": ["upstream_pool_purge": purgeInterval]])
        let admin = AdminClient(port: lb.adminPort)
        let clients = try (0..<n).map { _ in try RawHTTPConnection(port: lb.proxyPort, timeout: 20) }
        defer { for c in clients { c.close() } }

        let start = Date()
        try burst(clients, round: 1)
        try eventually(timeout: 5, "every upstream connection of burst 1 is released") {
            try self.poolStats(admin).inUse == 0
        }
        let afterFirst = try poolStats(admin)
        print("burst 1 answered after \(String(format: "%.2f", Date().timeIntervalSince(start))) s: \(afterFirst)")
        XCTAssertGreaterThanOrEqual(afterFirst.opened, n * 9 / 10, "the requests of burst 1 were in flight together")
        XCTAssertEqual(
            afterFirst.idle + afterFirst.purged, afterFirst.opened,
            "every connection burst 1 opened went back to the pool (none closed after one response)")

        let secondStart = Date()
        try burst(clients, round: 2)
        try eventually(timeout: 5, "every upstream connection of burst 2 is released") {
            try self.poolStats(admin).inUse == 0
        }
        let afterSecond = try poolStats(admin)
        print(
            "burst 2 answered after \(String(format: "%.2f", Date().timeIntervalSince(secondStart))) s: \(afterSecond)")
        // Each client stays on its worker, so burst 2 meets the same demand per worker as burst 1. New connections
        // are only those replacing what a purge closed in between (on a slow machine), plus a small margin.
        let openedBySecond = afterSecond.opened - afterFirst.opened
        XCTAssertLessThanOrEqual(
            openedBySecond, afterSecond.purged + n / 20,
            "burst 2 reused burst 1's connections instead of opening new ones")
        XCTAssertGreaterThanOrEqual(afterSecond.reused - afterFirst.reused, n - afterSecond.purged - n / 20)
        XCTAssertGreaterThan(afterSecond.reuseRatio, 0.4, "about half of all requests reused a connection")

        // Demand is gone: the purge shrinks the pool gradually, not all at once and not by the idle timeout (60 s).
        let quiet = Date()
        let peakIdle = afterSecond.idle
        var seenIdle: Set<Int> = [peakIdle]
        try eventually(timeout: 15, interval: 0.1, "the idle pool shrinks below half its peak") {
            let s = try self.poolStats(admin)
            seenIdle.insert(s.idle)
            return s.idle <= peakIdle / 2
        }
        let shrunk = try poolStats(admin)
        print(
            "pool \(peakIdle) -> \(shrunk.idle) idle \(String(format: "%.2f", Date().timeIntervalSince(quiet))) s "
                + "after the burst; idle counts seen: \(seenIdle.sorted(by: >).prefix(8))")
        XCTAssertGreaterThanOrEqual(shrunk.purged - afterSecond.purged, peakIdle / 2 - 1, "the purge closed them")
        XCTAssertGreaterThanOrEqual(
            seenIdle.filter { $0 > shrunk.idle && $0 < peakIdle }.count, 1,
            "the pool went down in steps (half the surplus per interval), not all at once")
        XCTAssertGreaterThan(shrunk.idle, 0, "a pool that just served a burst is not emptied in one go")
        XCTAssertTrue(lb.process.isRunning)
    }
}

import Foundation
import XCTest

/// The event loop's wake-up settings. `busy_polls`: the loop keeps polling without blocking while work arrives,
/// then sleeps. `coalesce_us`: under load the loop sleeps on a timer and takes every event that arrived in one
/// poll. Either way it must proxy as usual, sleep in epoll_wait when idle (no CPU burnt between requests) and
/// still shut down cleanly; coalescing must stay off while few exchanges are pending.
final class BusyPollTests: IntegrationTestCase {
    /// User + system CPU ticks (1/100 s) the process has used so far.
    private func cpuTicks(_ pid: Int32) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return Int(rest[11])! + Int(rest[12])!
    }

    /// `count` requests one after another on one connection, each answered by a backend; then closes it.
    private func sendSequentially(_ lb: LBServerProcess, _ count: Int, prefix: String) throws {
        let c = try RawHTTPConnection(port: lb.proxyPort)
        defer { c.close() }
        for i in 0..<count {
            try c.send("GET /\(prefix)/\(i) HTTP/1.1\r\nHost: loop\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200)
            XCTAssertTrue(r.bodyString.hasSuffix("path=/\(prefix)/\(i)\n"), r.bodyString)
        }
    }

    /// Polls `/api/stats` until `condition` holds for it: the proxy has finished the work a CPU measurement must
    /// not include.
    private func waitForStats(_ lb: LBServerProcess, _ what: String, _ condition: ([String: Any]) -> Bool) throws {
        let admin = AdminClient(port: lb.adminPort)
        try eventually(timeout: 10, what) { condition(try admin.call("GET", "/api/stats").json) }
    }

    /// A second of idleness costs (almost) no CPU: the loop sleeps in epoll_wait. A loop that kept spinning or
    /// waking on a timer would use up to ~100 ticks here. Then SIGTERM ends it cleanly. The caller has closed
    /// its client connections; the second starts once the proxy has handled those closes.
    private func assertIdleIsFreeAndStops(_ lb: LBServerProcess, _ what: String) throws {
        try waitForStats(lb, "no client connection open and no request in flight") { stats in
            (stats["connections"] as? [String: Any])?["open"] as? Int == 0
                && (stats["requests"] as? [String: Any])?["in_flight"] as? Int == 0
        }
        let before = try cpuTicks(lb.process.pid)
        Thread.sleep(forTimeInterval: 1.0)  // the idle second being measured
        let used = try cpuTicks(lb.process.pid) - before
        XCTAssertLessThanOrEqual(used, 5, "an idle \(what) proxy used \(used) of 100 CPU ticks in 1 s")
        lb.process.signal(SIGTERM)
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), 0, lb.process.log)
    }

    func testBusyPollingProxiesSleepsWhenIdleAndShutsDownCleanly() throws {
        let backends = try (1...2).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let lb = try startProxy(backends: backends.map(\.address), settings: ["busy_polls": 200, "coalesce_us": 0])
        try sendSequentially(lb, 300, prefix: "bp")
        // After at most 200 empty polls the loop blocks.
        try assertIdleIsFreeAndStops(lb, "busy-polling")
    }

    private func coalescedSleeps(_ lb: LBServerProcess) throws -> Int {
        let stats = try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json
        let loop = try XCTUnwrap(stats["event_loop"] as? [String: Any], "no event_loop in /api/stats")
        return try XCTUnwrap(loop["coalesced_sleeps"] as? Int)
    }

    func testCoalescingStaysOffWhileFewExchangesArePending() throws {
        let backends = try (1...2).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let lb = try startProxy(backends: backends.map(\.address), settings: ["coalesce_us": 200])
        // One request at a time: never 16 exchanges pending, so the loop never sleeps on a timer.
        try sendSequentially(lb, 200, prefix: "one")
        XCTAssertEqual(try coalescedSleeps(lb), 0, "coalesced with one exchange pending")
        try assertIdleIsFreeAndStops(lb, "coalescing")
    }

    func testCoalescingSleepsWhileManyExchangesWaitAndWaitingCostsNothing() throws {
        // Slow backends: 64 exchanges stay pending for 1.5 s, well over the 16 that allow coalescing.
        let backends = try (1...2).map { try LBBinaries.startDemoBackend(name: "s\($0)", delayMs: 1500) }
        let lb = try startProxy(backends: backends.map(\.address), settings: ["coalesce_us": 200])
        let connections = try (0..<64).map { _ in try RawHTTPConnection(port: lb.proxyPort, timeout: 10) }
        for (i, c) in connections.enumerated() { try c.send("GET /wait/\(i) HTTP/1.1\r\nHost: co\r\n\r\n") }
        // Nothing arrives while the backends think: after an empty sleep the loop blocks in epoll_wait. A loop
        // that went on sleeping and polling would wake 5,000 times a second here. Measured from when all 64 are
        // with the backends, for one second (well inside their 1.5 s).
        try waitForStats(lb, "64 requests in flight to the backends") { stats in
            (stats["servers"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["in_flight"] as? Int ?? 0) } == 64
        }
        let before = try cpuTicks(lb.process.pid)
        Thread.sleep(forTimeInterval: 1.0)  // the waiting second being measured
        let used = try cpuTicks(lb.process.pid) - before
        XCTAssertLessThanOrEqual(used, 5, "waiting on 64 slow exchanges used \(used) of 100 CPU ticks in 1 s")
        for (i, c) in connections.enumerated() {
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200)
            XCTAssertTrue(r.bodyString.hasSuffix("path=/wait/\(i)\n"), r.bodyString)
        }
        for c in connections { c.close() }
        let sleeps = try coalescedSleeps(lb)
        XCTAssertGreaterThan(sleeps, 0, "no coalescing sleep with 64 exchanges pending")
        let metrics = PromSamples(try AdminClient(port: lb.adminPort).call("GET", "/metrics").response.bodyString)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(metrics["lb_loop_coalesced_sleeps_total"]), Double(sleeps))
        try assertIdleIsFreeAndStops(lb, "coalescing")
    }

    /// Clients that close their connection after each response make every request a chain of wake-ups in
    /// sequence, which a coalescing sleep only lengthens: once most recent responses closed their connection,
    /// 64 pending exchanges no longer make the loop sleep.
    func testCoalescingStaysOffWhileClientsCloseAfterEachResponse() throws {
        let backends = try (1...2).map { try LBBinaries.startDemoBackend(name: "c\($0)", delayMs: 1500) }
        let lb = try startProxy(backends: backends.map(\.address), settings: ["coalesce_us": 200])
        func wave(_ name: String) throws {
            let connections = try (0..<64).map { _ in try RawHTTPConnection(port: lb.proxyPort, timeout: 10) }
            for (i, c) in connections.enumerated() {
                try c.send("GET /\(name)/\(i) HTTP/1.1\r\nHost: co\r\nConnection: close\r\n\r\n")
            }
            for c in connections {
                XCTAssertEqual(try c.readResponse().status, 200)
                c.close()
            }
        }
        // The first wave finds no recent response: with 64 pending, the loop coalesces as before.
        try wave("first")
        let afterFirst = try coalescedSleeps(lb)
        XCTAssertGreaterThan(afterFirst, 0, "no coalescing sleep with 64 exchanges pending and no history")
        // Every one of those 64 responses closed its connection: the next 64 pending exchanges get no sleep.
        try wave("second")
        XCTAssertEqual(try coalescedSleeps(lb), afterFirst, "coalesced while clients close after each response")
        try assertIdleIsFreeAndStops(lb, "coalescing")
    }

    func testPlainLoopWithoutBusyPollsOrCoalescingProxiesAndStops() throws {
        let backends = try (1...2).map { try LBBinaries.startDemoBackend(name: "p\($0)") }
        let lb = try startProxy(
            backends: backends.map(\.address), settings: ["coalesce_us": 0, "busy_polls": 0])
        try sendSequentially(lb, 100, prefix: "plain")
        XCTAssertEqual(try coalescedSleeps(lb), 0)
        try assertIdleIsFreeAndStops(lb, "plain")
    }
}

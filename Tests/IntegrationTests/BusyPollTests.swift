import Foundation
import XCTest

/// `busy_polls`: the loop keeps polling without blocking while work arrives, then sleeps. It must proxy as
/// usual, sleep when idle (no CPU burnt between requests) and still shut down cleanly.
final class BusyPollTests: IntegrationTestCase {
    /// User + system CPU ticks (1/100 s) the process has used so far.
    private func cpuTicks(_ pid: Int32) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return Int(rest[11])! + Int(rest[12])!
    }

    func testBusyPollingProxiesSleepsWhenIdleAndShutsDownCleanly() throws {
        let backends = try (1...2).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let lb = try startProxy(backends: backends.map(\.address), settings: ["busy_polls": 200])
        let c = try RawHTTPConnection(port: lb.proxyPort)
        for i in 0..<300 {
            try c.send("GET /bp/\(i) HTTP/1.1\r\nHost: bp\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200)
            XCTAssertTrue(r.bodyString.hasSuffix("path=/bp/\(i)\n"), r.bodyString)
        }
        // Idle: after at most 200 empty polls the loop sleeps in epoll_wait, so a second of idleness costs
        // (almost) no CPU. A loop that kept spinning would use ~100 ticks here.
        Thread.sleep(forTimeInterval: 0.2)
        let before = try cpuTicks(lb.process.pid)
        Thread.sleep(forTimeInterval: 1.0)
        let used = try cpuTicks(lb.process.pid) - before
        XCTAssertLessThanOrEqual(used, 5, "an idle busy-polling proxy used \(used) of 100 CPU ticks in 1 s")
        lb.process.signal(SIGTERM)
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), 0, lb.process.log)
    }
}

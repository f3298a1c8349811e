import Foundation
import Glibc
import XCTest

/// `limits.max_client_connections` (per worker): a worker at its limit closes new connections at once, counts
/// them, and goes on serving the ones it holds and the ones that come once a slot is free. (A refused
/// connection once left its socket calling back into a freed object: the server would not survive this.)
final class ConnectionLimitTests: IntegrationTestCase {
    func testConnectionsOverTheLimitAreClosedAndCountedAndTheServerGoesOn() throws {
        let limit = 2
        let workers = Int(ProcessInfo.processInfo.environment["LB_TEST_WORKERS"] ?? "") ?? 1
        let backend = try LBBinaries.startDemoBackend(name: "b")
        let lb = try startProxy(backends: [backend.address], settings: ["limits": ["max_client_connections": limit]])
        let admin = AdminClient(port: lb.adminPort)
        // Open connections one by one: each is served and held, or closed at once because its worker is full.
        var held: [RawHTTPConnection] = []
        var refused = 0
        for i in 0..<(limit * workers + 8) {
            let c = try RawHTTPConnection(port: lb.proxyPort)
            if c.isClosedByPeer(timeout: 0.2) {
                refused += 1
                continue
            }
            // A refusal slower than the wait above shows as a connection closed without an answer.
            guard (try? c.send("GET /held/\(i) HTTP/1.1\r\nHost: t\r\n\r\n")) != nil,
                let response = try? c.readResponse()
            else {
                refused += 1
                continue
            }
            XCTAssertEqual(response.status, 200, "an accepted connection is served")
            held.append(c)
        }
        XCTAssertLessThanOrEqual(held.count, limit * workers, "no worker holds more than its limit")
        XCTAssertGreaterThanOrEqual(refused, 8, "every connection beyond the limits was refused")
        try eventually(timeout: 5, "connections.refused reaches \(refused)") {
            let stats = try admin.call("GET", "/api/stats").json
            return (stats["connections"] as? [String: Any])?["refused"] as? Int == refused
        }
        // The held connections still work; once they go, new clients are served.
        for c in held {
            try c.send("GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try c.readResponse().status, 200)
            c.close()
        }
        try eventually(timeout: 5, "freed slots serve new clients") {
            (try? HTTPClient.get(port: lb.proxyPort, path: "/after"))?.status == 200
        }
        XCTAssertTrue(lb.process.isRunning, "the server survived the refusals")
    }

    /// `limits.accepts_per_turn`: a burst of new connections beyond the share is left in the kernel's accept
    /// queue and taken in later loop turns (counted in `connections.accepts_deferred`); every one is served.
    func testABurstOfNewConnectionsIsTakenOverSeveralTurnsAndEveryOneIsServed() throws {
        let backend = try LBBinaries.startDemoBackend(name: "b")
        let lb = try startProxy(backends: [backend.address], settings: ["limits": ["accepts_per_turn": 1]])
        let admin = AdminClient(port: lb.adminPort)
        func deferred() throws -> Int {
            let stats = try admin.call("GET", "/api/stats").json
            return try XCTUnwrap((stats["connections"] as? [String: Any])?["accepts_deferred"] as? Int)
        }
        // Bursts of 128 connections from 32 threads, until some met a turn whose share was taken.
        let statuses = Statuses()
        for _ in 0..<5 where try deferred() == 0 {
            DispatchQueue.concurrentPerform(iterations: 32) { t in
                for i in 0..<4 {
                    let status = (try? HTTPClient.get(
                        port: lb.proxyPort, path: "/burst/\(t)/\(i)", headers: [("Connection", "close")]))?.status ?? 0
                    statuses.append(status)
                }
            }
        }
        XCTAssertGreaterThan(try deferred(), 0, "a burst met the per-turn share")
        XCTAssertEqual(statuses.all.filter { $0 != 200 }, [], "every connection was served, if later")
        XCTAssertEqual(
            try XCTUnwrap((try admin.call("GET", "/api/stats").json["connections"] as? [String: Any])?["refused"]
                as? Int), 0)
        XCTAssertTrue(try admin.call("GET", "/metrics").response.bodyString.contains("lb_accepts_deferred_total "))
    }

    /// Out of descriptors, a listener pauses instead of spinning on a queue it cannot take from, and leaves the
    /// waiting connections queued in the kernel rather than resetting them: each is served once a descriptor frees
    /// up, and the failures are counted in `connections.accept_errors`. The server has no backend, so it answers
    /// 503 itself and needs no descriptor beyond a client's.
    func testOutOfDescriptorsAcceptingPausesAndTheQueuedClientsAreServedOnceSomeClose() throws {
        let (fd, deadPort) = try LoopbackSocket.listen()
        Glibc.close(fd)
        let lb = try LBBinaries.startServer(backends: ["127.0.0.1:\(deadPort)"])
        let pid = lb.process.pid
        XCTAssertEqual(try HTTPClient.get(port: lb.proxyPort, path: "/warm").status, 503)
        // Room for 6 more descriptors, then 20 clients, each sending a request at once.
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        let limit = open + 6
        let set = ManagedProcess.run("prlimit", ["--pid", "\(pid)", "--nofile=\(limit):\(limit)"], timeout: 10)
        XCTAssertEqual(set.status, 0, set.stderr)
        var waiting = try (0..<20).map { i in
            let c = try RawHTTPConnection(port: lb.proxyPort)
            try c.send("GET /c/\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            return c
        }
        // The server fills its descriptors with some of them and answers those; the rest wait.
        var answered: [RawHTTPConnection] = []
        try eventually(timeout: 10, "the server holds as many clients as it has descriptors") {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count >= limit
        }
        for c in waiting where (try? c.readResponse(timeout: 0.2))?.status == 503 { answered.append(c) }
        XCTAssertGreaterThan(answered.count, 0)
        // A few more than 6: the count above may include descriptors closed since (the warm-up's connection, a
        // socket of a failed connect to the dead server).
        XCTAssertLessThanOrEqual(answered.count, 10, "no more clients than descriptors")
        waiting.removeAll { c in answered.contains { $0 === c } }
        // Nothing is taken while no descriptor is free, and that costs no CPU: the listener does not spin.
        let before = try cpuSeconds(pid: pid)
        Thread.sleep(forTimeInterval: 1)
        XCTAssertLessThan(try cpuSeconds(pid: pid) - before, 0.3, "the server idles while out of descriptors")
        for c in waiting { XCTAssertFalse(c.isClosedByPeer(timeout: 0.05), "a waiting client was not reset") }
        // Each answered client that leaves frees a descriptor for one that waits, until every one was served.
        for c in answered { c.close() }
        let deadline = Date().addingTimeInterval(20)
        while !waiting.isEmpty && Date() < deadline {
            guard let i = waiting.firstIndex(where: { (try? $0.readResponse(timeout: 0.2))?.status == 503 }) else {
                continue
            }
            waiting.remove(at: i).close()
        }
        XCTAssertEqual(waiting.count, 0, "every queued client was served once descriptors freed up")
        let stats = try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json
        XCTAssertGreaterThan(try XCTUnwrap((stats["connections"] as? [String: Any])?["accept_errors"] as? Int), 0)
        XCTAssertTrue(lb.process.isRunning)
    }
}

/// Statuses collected from many threads (the test's own bookkeeping).
private final class Statuses: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int] = []
    func append(_ status: Int) { lock.withLock { values.append(status) } }
    var all: [Int] { lock.withLock { values } }
}

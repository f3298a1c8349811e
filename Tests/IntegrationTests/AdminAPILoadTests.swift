import Foundation
import XCTest

/// Admin changes while traffic runs: no request fails, and the keys that change backend are the fraction the
/// API reported.
final class AdminAPILoadTests: IntegrationTestCase {
    func testChangesUnderLoadFailNoRequestAndMoveTheReportedFraction() throws {
        let (backends, lb) = try startCluster(backends: 3)
        let b4 = try LBBinaries.startDemoBackend(name: "b4")
        let admin = AdminClient(port: lb.adminPort)
        let sample = TrafficProbe.paths(2000, prefix: "/sample")
        let load = LoadGenerator(port: lb.proxyPort, paths: TrafficProbe.paths(500, prefix: "/load"), threads: 1)
        defer { load.stop() }
        try eventually(timeout: 5, "background load is running") { load.succeeded > 20 }

        var routing = try TrafficProbe.backends(port: lb.proxyPort, paths: sample)
        var steps: [(String, AdminAnswer)] = []
        func step(_ name: String, _ method: String, _ path: String, _ body: String? = nil) throws {
            let answer = try admin.call(method, path, body: body)
            XCTAssertTrue((200..<300).contains(answer.status), "\(name): \(answer.status) \(answer.error)")
            let next = try TrafficProbe.backends(port: lb.proxyPort, paths: sample)
            let observed = TrafficProbe.changedFraction(routing, next)
            XCTAssertEqual(observed, answer.movedFraction, accuracy: 0.05, "\(name): observed vs reported")
            print(
                "\(name): moved_fraction reported \(answer.movedFraction), observed \(observed) (\(sample.count) paths)"
            )
            routing = next
            steps.append((name, answer))
        }

        try step("add b4", "POST", "/manage/servers", #"{"host": "127.0.0.1", "port": \#(b4.port), "id": "b4"}"#)
        XCTAssertGreaterThan(TrafficProbe.counts(routing)["b4"] ?? 0, 200)
        try step("drain b1", "PATCH", "/manage/servers/\(backends[0].address)", #"{"state": "draining"}"#)
        XCTAssertNil(TrafficProbe.counts(routing)["b1"])
        try step("remove b2", "DELETE", "/manage/servers/\(backends[1].address)")
        XCTAssertNil(TrafficProbe.counts(routing)["b2"])
        try step("reweight b3", "PATCH", "/manage/servers/\(backends[2].address)", #"{"weight": 3}"#)

        // Some load on the final routing too, before stopping.
        try load.waitForProgress(50)
        load.stop()
        let result = (ok: load.succeeded, failures: load.failures.map(\.description))
        XCTAssertEqual(result.failures, [], "every request during the changes must succeed")
        XCTAssertGreaterThan(result.ok, 200)
        print("background load: \(result.ok) requests, \(result.failures.count) failed")
        for (name, answer) in steps { XCTAssertGreaterThan(answer.movedFraction, 0.05, name) }
    }

    /// With 1,000 servers a change's table build and moved-keys sample take a while (seconds in a debug build).
    /// They run off the control loop, one change at a time: concurrent adds from separate connections all land
    /// (none built from a state another one replaced), and the admin API keeps answering meanwhile.
    func testChangesToAThousandServersRunOneAtATimeOffTheControlLoop() throws {
        let servers = (1...1000).map { "127.0.0.1:\(30000 + $0)" }  // nothing listens: checks fail, fine here
        let lb = try LBBinaries.startServer(backends: servers, timeout: 30)
        let admin = AdminClient(port: lb.adminPort)
        let adds = 3
        let statuses = LockedArray<Int>()
        let group = DispatchGroup()
        for i in 1...adds {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                let body = #"{"host": "127.0.0.1", "port": \#(32000 + i), "id": "new\#(i)"}"#
                let answer = try? AdminClient(port: lb.adminPort).call("POST", "/manage/servers", body: body)
                statuses.append(answer?.status ?? -1)
            }
        }
        var slowest = 0.0
        var polls = 0
        while group.wait(timeout: .now()) == .timedOut {
            let start = Date()
            let health = try admin.call("GET", "/api/health")
            XCTAssertNotEqual(health.status, 0)
            slowest = max(slowest, Date().timeIntervalSince(start))
            polls += 1
            Thread.sleep(forTimeInterval: 0.02)
        }
        print("\(adds) adds to 1,000 servers: \(polls) health answers meanwhile, slowest \(slowest) s")
        XCTAssertEqual(statuses.values.sorted(), Array(repeating: 201, count: adds))
        let ids = Set(try admin.servers().keys)
        XCTAssertEqual(ids.count, 1000 + adds)
        for i in 1...adds { XCTAssertTrue(ids.contains("new\(i)"), "new\(i) was lost") }
        XCTAssertGreaterThan(polls, 2, "the changes were too quick to overlap a health call")
        XCTAssertLessThan(slowest, 0.5, "the admin API waited for a table build")
    }
}

/// Values appended from several threads.
final class LockedArray<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ item: T) {
        lock.lock()
        items.append(item)
        lock.unlock()
    }
    var values: [T] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}

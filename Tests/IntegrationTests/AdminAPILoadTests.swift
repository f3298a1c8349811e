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
}

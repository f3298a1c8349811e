import Foundation
import XCTest

/// The admin API against real binaries over loopback: each change shows in /api/servers and traffic follows it.
final class AdminAPITests: IntegrationTestCase {
    /// An admin client that keeps its connection open (a dashboard tab polling) must not hold up a graceful
    /// stop: the admin connections close with the admin listener.
    func testOpenKeepAliveAdminConnectionDoesNotHoldUpShutdown() throws {
        let (_, lb) = try startCluster(backends: 1)
        let c = try RawHTTPConnection(port: lb.adminPort)
        try c.send("GET /api/health HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try c.readResponse().status, 200)
        let started = Date()
        lb.process.signal(SIGTERM)
        XCTAssertEqual(lb.process.waitForExit(timeout: 8), 0, lb.process.log)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "shutdown waited on the idle admin connection")
    }

    func testAddDryRunChangesNothingThenRealAddReportsSameFractionAndGetsTraffic() throws {
        let (_, lb) = try startCluster(backends: 2)
        let b3 = try LBBinaries.startDemoBackend(name: "b3")
        let admin = AdminClient(port: lb.adminPort)
        let paths = TrafficProbe.paths(600)
        let before = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        let serversBefore = try admin.serversBody()
        let body = #"{"host": "127.0.0.1", "port": \#(b3.port), "id": "b3", "weight": 1}"#

        let dry = try admin.call("POST", "/manage/servers?dry_run=1", body: body)
        XCTAssertEqual(dry.status, 200, dry.error)
        XCTAssertEqual(dry.json["dry_run"] as? Bool, true)
        XCTAssertEqual(dry.server["id"] as? String, "b3")
        XCTAssertEqual(try admin.serversBody(), serversBefore, "a dry run must not change anything")
        XCTAssertEqual(try TrafficProbe.backends(port: lb.proxyPort, paths: paths), before)

        let added = try admin.call("POST", "/manage/servers", body: body)
        XCTAssertEqual(added.status, 201, added.error)
        XCTAssertEqual(added.movedFraction, dry.movedFraction, accuracy: 1e-12)
        XCTAssertGreaterThan(added.movedFraction, 0.1)
        XCTAssertEqual(added.server["port"] as? Int, b3.port)
        let listed = try admin.servers()
        XCTAssertEqual(listed.count, 3)
        XCTAssertEqual(listed["b3"]?["state"] as? String, "up")

        let after = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        XCTAssertGreaterThan(TrafficProbe.counts(after)["b3"] ?? 0, 60, "the added server gets some keys")
        // Consistent hashing: only keys that moved to b3 changed hands.
        for (path, backend) in after where backend != "b3" { XCTAssertEqual(before[path], backend, path) }
        XCTAssertEqual(TrafficProbe.changedFraction(before, after), added.movedFraction, accuracy: 0.07)

        let again = try admin.call("POST", "/manage/servers", body: body)
        XCTAssertEqual(again.status, 409)
        XCTAssertEqual(again.json["field"] as? String, "id")
    }

    func testDrainReenableReweightAndDeleteEachShowInServersAndTraffic() throws {
        let (backends, lb) = try startCluster(backends: 3)
        let admin = AdminClient(port: lb.adminPort)
        let b2 = backends[1].address  // ids default to host:port
        let paths = TrafficProbe.paths(600)
        let start = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        XCTAssertEqual(TrafficProbe.counts(start).count, 3)

        // Drain: b2 gets no new requests; only its keys move.
        let drain = try admin.call("PATCH", "/manage/servers/\(b2)", body: #"{"state": "draining"}"#)
        XCTAssertEqual(drain.status, 200, drain.error)
        XCTAssertEqual(try admin.servers()[b2]?["state"] as? String, "draining")
        let drained = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        XCTAssertNil(TrafficProbe.counts(drained)["b2"])
        for (path, backend) in start where backend != "b2" { XCTAssertEqual(drained[path], backend) }
        XCTAssertEqual(TrafficProbe.changedFraction(start, drained), drain.movedFraction, accuracy: 0.07)

        // Re-enable: routing returns to exactly where it was, and the same fraction moves back.
        let enable = try admin.call("PATCH", "/manage/servers/\(b2)", body: #"{"state": "up"}"#)
        XCTAssertEqual(enable.status, 200, enable.error)
        XCTAssertEqual(enable.movedFraction, drain.movedFraction, accuracy: 1e-9)
        XCTAssertEqual(try admin.servers()[b2]?["state"] as? String, "up")
        XCTAssertEqual(try TrafficProbe.backends(port: lb.proxyPort, paths: paths), start)

        // Reweight: b2 gains keys, and only towards itself; the server keeps serving (not marked removed).
        let reweight = try admin.call("PATCH", "/manage/servers/\(b2)", body: #"{"weight": 4}"#)
        XCTAssertEqual(reweight.status, 200, reweight.error)
        XCTAssertEqual(try admin.servers()[b2]?["weight"] as? Int, 4)
        let heavy = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        XCTAssertGreaterThan(TrafficProbe.counts(heavy)["b2"] ?? 0, TrafficProbe.counts(start)["b2"] ?? 0)
        for (path, backend) in heavy where backend != "b2" { XCTAssertEqual(start[path], backend) }
        XCTAssertEqual(TrafficProbe.changedFraction(start, heavy), reweight.movedFraction, accuracy: 0.07)

        // Delete: gone from /api/servers, no traffic, 404 afterwards.
        let delete = try admin.call("DELETE", "/manage/servers/\(b2)")
        XCTAssertEqual(delete.status, 200, delete.error)
        XCTAssertEqual(delete.server["state"] as? String, "removed")
        let listed = try admin.servers()
        XCTAssertEqual(listed.count, 2)
        XCTAssertNil(listed[b2])
        let gone = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        XCTAssertNil(TrafficProbe.counts(gone)["b2"])
        XCTAssertEqual(TrafficProbe.changedFraction(heavy, gone), delete.movedFraction, accuracy: 0.07)
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/\(b2)").status, 404)
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/\(b2)", body: #"{"weight": 1}"#).status, 404)
    }

    func testDeleteLetsTheInFlightRequestFinish() throws {
        let slow = try LBBinaries.startDemoBackend(name: "slow", delayMs: 800)
        let fast = try LBBinaries.startDemoBackend(name: "fast")
        let lb = try LBBinaries.startServer(backends: [slow.address, fast.address])
        let admin = AdminClient(port: lb.adminPort)
        // A path the slow server owns.
        let owned = try TrafficProbe.paths(40).first { path in
            try HTTPClient.get(port: lb.proxyPort, path: path, timeout: 5).header("X-Backend") == "slow"
        }
        let path = try XCTUnwrap(owned)
        let inFlight = try RawHTTPConnection(port: lb.proxyPort, timeout: 10)
        try inFlight.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
        // Delete once the request is with the slow server (it answers after 800 ms).
        try eventually(timeout: 5, "the request is in flight to the slow server") {
            let servers = try admin.call("GET", "/api/stats").json["servers"] as? [[String: Any]] ?? []
            return servers.first { $0["id"] as? String == slow.address }?["in_flight"] as? Int == 1
        }
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/\(slow.address)").status, 200)
        let response = try inFlight.readResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("X-Backend"), "slow")
        XCTAssertEqual(try HTTPClient.get(port: lb.proxyPort, path: path).header("X-Backend"), "fast")
    }

    func testStatsCountRequestsPerServerAndInTotal() throws {
        let (backends, lb) = try startCluster(backends: 2)
        let admin = AdminClient(port: lb.adminPort)
        _ = try TrafficProbe.backends(port: lb.proxyPort, paths: TrafficProbe.paths(50))
        let stats = try admin.call("GET", "/api/stats")
        XCTAssertEqual(stats.status, 200)
        XCTAssertEqual(stats.json["version"] as? String, "0.1.0")
        XCTAssertEqual(stats.json["generation"] as? Int, 1)
        XCTAssertNotNil(stats.json["uptime_seconds"] as? Double)
        let requests = stats.json["requests"] as? [String: Any]
        XCTAssertEqual(requests?["total"] as? Int, 50)
        let upstream = stats.json["upstream"] as? [String: Any]
        XCTAssertEqual(upstream?["requests"] as? Int, 50)
        XCTAssertEqual(upstream?["connect_errors"] as? Int, 0)
        let servers = stats.json["servers"] as? [[String: Any]] ?? []
        XCTAssertEqual(Set(servers.compactMap { $0["id"] as? String }), Set(backends.map(\.address)))
        XCTAssertEqual(servers.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) }, 50)
    }
}

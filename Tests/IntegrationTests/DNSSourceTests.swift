import Foundation
import XCTest

/// The dns server source against a real DNS server (dnslib, on loopback) whose records each test changes as it
/// goes: address records become servers and follow adds and removes, SRV weights become lb weights, failures keep
/// the last good set, NXDOMAIN empties it only after the hold, and the TTL decides when lb asks again.
final class DNSSourceTests: IntegrationTestCase {
    private typealias Zone = DNSTestServer

    /// Demo backends b1...bN on 127.0.0.1...127.0.0.N, all on the same port (the one A/AAAA names take).
    private func backendsOnOnePort(_ count: Int) throws -> (port: Int, backends: [DemoBackend]) {
        let first = try LBBinaries.startDemoBackend(name: "b1")
        let others = try (2...max(2, count)).prefix(count - 1).map {
            try LBBinaries.startDemoBackend(
                name: "b\($0)", extraArguments: ["--host", "127.0.0.\($0)", "--port", "\(first.port)"])
        }
        return (first.port, [first] + others)
    }

    func testAddressRecordsAreTheServersAndFollowAddsAndRemoves() throws {
        let (port, _) = try backendsOnOnePort(3)
        let dns = try DNSTestServer(self, zone: ["names": ["web.test": [Zone.a("127.0.0.1"), Zone.a("127.0.0.2")]]])
        let lb = try startDNSLB([
            "name": "web.test", "port": port, "resolvers": [dns.resolver], "min_ttl": "100ms", "family": "ipv4",
        ])
        let id = { (n: Int) in "127.0.0.\(n):\(port)" }
        try lb.waitServers([id(1), id(2)])
        let paths = TrafficProbe.paths(200)
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths).values), ["b1", "b2"])
        let b2Requests = try lb.admin.servers()[id(2)]?["requests"] as? Int ?? 0
        XCTAssertGreaterThan(b2Requests, 0)

        // A record added: a new server, which gets traffic; the others keep their Backend (and its counters).
        try dns.setZone(["names": ["web.test": [Zone.a("127.0.0.1"), Zone.a("127.0.0.2"), Zone.a("127.0.0.3")]]])
        try lb.waitServers([id(1), id(2), id(3)])
        XCTAssertEqual(
            Set(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths).values), ["b1", "b2", "b3"])
        XCTAssertGreaterThan(try lb.admin.servers()[id(2)]?["requests"] as? Int ?? 0, b2Requests, "same Backend kept")

        // A record removed: its server leaves routing.
        try dns.setZone(["names": ["web.test": [Zone.a("127.0.0.2"), Zone.a("127.0.0.3")]]])
        try lb.waitServers([id(2), id(3)])
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths).values), ["b2", "b3"])

        // The set is DNS's: admin writes are refused and change nothing.
        let post = try lb.admin.call("POST", "/manage/servers", body: #"{"host": "127.0.0.1", "port": \#(port)}"#)
        XCTAssertEqual(post.status, 409, post.response.bodyString)
        XCTAssertTrue(post.error.contains("the servers come from DNS"), post.error)
        let delete = try lb.admin.call("DELETE", "/manage/servers/\(id(2))")
        XCTAssertEqual(delete.status, 409, delete.response.bodyString)
        XCTAssertEqual(try lb.serverIDs(), [id(2), id(3)])
        let source = try lb.source()
        XCTAssertEqual(source["type"] as? String, "dns")
        XCTAssertEqual(source["name"] as? String, "web.test")
        XCTAssertEqual(source["state"] as? String, "ok")
        XCTAssertEqual(source["servers"] as? [String], [id(2), id(3)])
        XCTAssertNotNil(source["last_answer_at_ms"])
    }

    func testSRVWeightsBecomeServerWeightsAndBackupsServeOnlyWhenTheBestPriorityCannot() throws {
        let backends = try demoBackends(3)
        func zone(_ w1: Int, _ w2: Int, targets: Bool = true, additional: Bool = true) -> [String: Any] {
            var names: [String: Any] = [
                "_http._tcp.svc.test": [
                    Zone.srv(priority: 10, weight: w1, port: backends[0].port, target: "b1.svc.test"),
                    Zone.srv(priority: 10, weight: w2, port: backends[1].port, target: "b2.svc.test"),
                    Zone.srv(priority: 20, weight: 5, port: backends[2].port, target: "b3.svc.test"),
                ],
                "b3.svc.test": [Zone.a("127.0.0.1")],
            ]
            if targets {
                names["b1.svc.test"] = [Zone.a("127.0.0.1")]
                names["b2.svc.test"] = [Zone.a("127.0.0.1")]
            }
            return ["names": names, "no_additional": additional ? [] : ["_http._tcp.svc.test"]]
        }
        let dns = try DNSTestServer(self, zone: zone(1, 3))
        let lb = try startDNSLB(["name": "_http._tcp.svc.test", "resolvers": [dns.resolver], "min_ttl": "100ms"])
        let ids = backends.map { "127.0.0.1:\($0.port)" }
        try lb.waitServers([ids[0], ids[1]])
        func weights() throws -> [Int] {
            try [ids[0], ids[1]].map { try lb.admin.servers()[$0]?["weight"] as? Int ?? -1 }
        }
        XCTAssertEqual(try weights(), [1, 3])
        let paths = TrafficProbe.paths(400)
        var counts = TrafficProbe.counts(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths))
        XCTAssertGreaterThan(counts["b2"] ?? 0, 2 * (counts["b1"] ?? 0), "\(counts)")

        // Weights changed in DNS: lb's weights and the distribution follow. Without the additional section lb
        // asks for the targets' addresses itself.
        try dns.setZone(zone(6, 2, additional: false))
        try eventually(timeout: 10, "the SRV weights are applied") { try weights() == [6, 2] }
        counts = TrafficProbe.counts(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths))
        XCTAssertGreaterThan(counts["b1"] ?? 0, 2 * (counts["b2"] ?? 0), "\(counts)")
        XCTAssertFalse(dns.queries("b1.svc.test").isEmpty, "the target's address was asked for")

        // Weight 0 is lb's smallest weight that still takes traffic, not a drain.
        try dns.setZone(zone(0, 2))
        try eventually(timeout: 10, "SRV weight 0 maps to 1") { try weights() == [1, 2] }

        // No target of priority 10 resolves any more: the priority 20 backup takes over.
        try dns.setZone(zone(1, 1, targets: false))
        try lb.waitServers([ids[2]])
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths).values), ["b3"])
        XCTAssertEqual(try lb.source()["unresolved_targets"] as? [String], ["b1.svc.test", "b2.svc.test"])
    }

    func testStartingDoesNotWaitForDNSAndFailuresKeepTheLastGoodSet() throws {
        let (port, _) = try backendsOnOnePort(2)
        let records: [String: Any] = ["names": ["web.test": [Zone.a("127.0.0.1"), Zone.a("127.0.0.2")]]]
        var silent = records
        silent["drop"] = ["web.test"]
        let dns = try DNSTestServer(self, zone: silent)
        // The name is never answered: lb still starts, answers 503 and says why.
        let lb = try startDNSLB([
            "name": "web.test", "port": port, "resolvers": [dns.resolver], "min_ttl": "100ms", "max_ttl": "1s",
            "timeout": "200ms", "family": "ipv4",
        ])
        let early = try HTTPClient.get(port: lb.server.proxyPort, path: "/x")
        XCTAssertEqual(early.status, 503)
        try eventually(timeout: 10, "a timeout is counted") { try lb.failures("timeout") >= 1 }
        XCTAssertEqual(try lb.serverIDs(), [])

        try dns.setZone(records)
        try lb.waitServers(["127.0.0.1:\(port)", "127.0.0.2:\(port)"])
        XCTAssertEqual(try lb.source()["state"] as? String, "ok")
        let paths = TrafficProbe.paths(100)
        let before = try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths)

        // SERVFAIL: the set stays, the failure is counted and shown; traffic goes on as before.
        var failing = records
        failing["servfail"] = ["web.test"]
        try dns.setZone(failing)
        try eventually(timeout: 10, "SERVFAIL is counted") { try lb.failures("servfail") >= 2 }
        XCTAssertEqual(try lb.source()["state"] as? String, "failing")
        let source = try lb.source()
        XCTAssertTrue((source["last_error"] as? String ?? "").hasPrefix("servfail"), "\(source)")
        XCTAssertEqual(try lb.serverIDs(), ["127.0.0.1:\(port)", "127.0.0.2:\(port)"])
        XCTAssertEqual(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths), before)
        let metrics = try lb.admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("lb_dns_failing 1\n"), metrics)
        XCTAssertTrue(metrics.contains(#"lb_dns_failures_total{kind="timeout"} "#), metrics)
        if ManagedProcess.resolveExecutable("promtool") != nil {
            let r = ManagedProcess.run("promtool", ["check", "metrics"], input: Data(metrics.utf8), timeout: 30)
            XCTAssertEqual(r.status, 0, String(decoding: r.stdout, as: UTF8.self) + r.stderr)
        }

        // An empty answer (the name exists, without A records) keeps the set too.
        try dns.setZone(["names": ["web.test": [Zone.srv(priority: 1, weight: 1, port: 1, target: "x.test")]]])
        try eventually(timeout: 10, "an empty answer is counted") { try lb.failures("no_data") >= 1 }
        XCTAssertEqual(try lb.serverIDs(), ["127.0.0.1:\(port)", "127.0.0.2:\(port)"])

        try dns.setZone(records)
        try eventually(timeout: 10, "answers again") { try lb.source()["state"] as? String == "ok" }
        XCTAssertTrue(lb.server.process.log.contains("dns: resolution failing"), lb.server.process.log)
        // Shutdown closes the resolver's sockets, polls and timer with everything else.
        XCTAssertEqual(lb.server.process.terminate(), 0, lb.server.process.log)
        XCTAssertFalse(lb.server.process.log.contains("handles still open"), lb.server.process.log)
    }

    func testNXDOMAINKeepsTheSetUntilTheHoldHasPassedThenEmptiesIt() throws {
        let (port, _) = try backendsOnOnePort(1)
        let records: [String: Any] = ["names": ["web.test": [Zone.a("127.0.0.1")]]]
        let dns = try DNSTestServer(self, zone: records)
        let lb = try startDNSLB([
            "name": "web.test", "port": port, "resolvers": [dns.resolver], "min_ttl": "100ms", "max_ttl": "1s",
            "nxdomain_hold": "2s", "family": "ipv4",
        ])
        try lb.waitServers(["127.0.0.1:\(port)"])

        let removed = Date()
        try dns.setZone(["names": [:]])
        try eventually(timeout: 10, "NXDOMAIN is seen") { try lb.source()["state"] as? String == "nxdomain_hold" }
        XCTAssertEqual(try lb.serverIDs(), ["127.0.0.1:\(port)"], "kept during the hold")
        XCTAssertEqual(try HTTPClient.get(port: lb.server.proxyPort, path: "/x").status, 200)
        try lb.waitServers([], timeout: 10)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(removed), 2.0, "emptied only after the hold")
        XCTAssertEqual(try lb.source()["state"] as? String, "nxdomain")
        XCTAssertGreaterThanOrEqual(try lb.failures("nxdomain"), 2)
        XCTAssertEqual(try HTTPClient.get(port: lb.server.proxyPort, path: "/x").status, 503)

        try dns.setZone(records)
        try lb.waitServers(["127.0.0.1:\(port)"])
    }

    func testTheTTLDecidesWhenToAskAgainWithinTheFloorAndCeiling() throws {
        let (port, _) = try backendsOnOnePort(1)
        let dns = try DNSTestServer(
            self,
            zone: [
                "names": ["short.test": [Zone.a("127.0.0.1", ttl: 1)], "long.test": [Zone.a("127.0.0.1", ttl: 3600)]]
            ])
        // TTL 1 s above a 1 s floor: every second. TTL 1 h under a 2 s ceiling: every 2 s.
        let short = try startDNSLB([
            "name": "short.test", "port": port, "resolvers": [dns.resolver], "min_ttl": "1s", "max_ttl": "10s",
            "family": "ipv4",
        ])
        let long = try startDNSLB([
            "name": "long.test", "port": port, "resolvers": [dns.resolver], "min_ttl": "1s", "max_ttl": "2s",
            "family": "ipv4",
        ])
        try eventually(timeout: 15, "four queries of long.test") { dns.queries("long.test").count >= 4 }
        func gaps(_ times: [Double]) -> [Double] { zip(times.dropFirst(), times).map { $0 - $1 } }
        let shortGaps = gaps(dns.queries("short.test"))
        let longGaps = gaps(dns.queries("long.test"))
        XCTAssertGreaterThanOrEqual(shortGaps.count, 5, "\(shortGaps)")
        for gap in shortGaps { XCTAssertEqual(gap, 1.0, accuracy: 0.5, "short.test: \(shortGaps)") }
        for gap in longGaps { XCTAssertEqual(gap, 2.0, accuracy: 0.5, "long.test: \(longGaps)") }
        XCTAssertEqual(try short.source()["ttl_seconds"] as? Int, 1)
        XCTAssertEqual(try long.source()["ttl_seconds"] as? Int, 3600)
        XCTAssertLessThanOrEqual(try long.source()["next_query_in_seconds"] as? Double ?? 99, 2.0)
    }

    func testCheckConfigNamesEveryBadDNSField() throws {
        let path = try writeConfigFile([
            "server_source": [
                "type": "dns",
                "dns": [
                    "name": "web..test", "resolvers": ["ns.example"], "min_ttl": "10s", "max_ttl": "1s", "family": "v4",
                ],
            ]
        ])
        let r = ManagedProcess.run(try LBBinaries.path(of: .server), ["--check-config", "--config", path], timeout: 20)
        XCTAssertEqual(r.status, 2, r.stderr)
        for field in [
            "server_source.dns.name:", "server_source.dns.resolvers[0]:", "server_source.dns.max_ttl:",
            "server_source.dns.family:",
        ] {
            XCTAssertTrue(r.stderr.contains(field), "missing \(field) in:\n\(r.stderr)")
        }
        let flags = ManagedProcess.run(
            try LBBinaries.path(of: .server), ["--check-config", "--dns", "web.test"], timeout: 20)
        XCTAssertEqual(flags.status, 2, flags.stderr)
        XCTAssertTrue(flags.stderr.contains("needs --dns-port N"), flags.stderr)
    }
}

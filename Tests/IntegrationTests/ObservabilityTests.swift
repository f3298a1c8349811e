import Foundation
import XCTest

/// `/api/stats` and `/metrics` against known traffic: every counter the traffic determines is asserted exactly, in
/// both worker modes (the harness adds `--workers 2` under `LB_TEST_WORKERS=2`; counters are summed over workers).
///
/// The cluster: three demo backends and a spy that reads each request and closes without answering (each request
/// first routed to it is retried elsewhere). Passive health checks are off so a failing server keeps its keys and
/// every failure is counted, and the routing key is the URI so `/status/500?i=N` spreads over the servers.
final class ObservabilityTests: IntegrationTestCase {
    private struct Cluster {
        let demo: [DemoBackend]
        let spy: SpyBackend
        let lb: LBServerProcess
        /// Server id (`127.0.0.1:PORT`, the default for `--backend`) by demo backend name.
        func id(_ name: String) -> String { demo.first { $0.name == name }!.address }
        var spyID: String { spy.address }
    }

    private func startCluster() throws -> Cluster {
        let demo = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let spy = try SpyBackend(reply: .perRequest([]), closeAfterReply: true)
        let lb = try startProxy(
            backends: demo.map(\.address) + [spy.address],
            settings: [
                "routing": ["key": "uri"], "limits": ["max_request_line": 1024],
                "health_check": ["enabled": false, "passive_failures": 0],
            ])
        return Cluster(demo: demo, spy: spy, lb: lb)
    }

    /// Sends `paths` as keep-alive GETs on one connection; returns `path → (status, X-Backend)`.
    private func send(_ paths: [String], port: Int) throws -> [(path: String, status: Int, backend: String)] {
        let connection = try RawHTTPConnection(port: port, timeout: 10)
        defer { connection.close() }
        return try paths.map { path in
            try connection.send("GET \(path) HTTP/1.1\r\nHost: observe\r\n\r\n")
            let response = try connection.readResponse()
            return (path, response.status, response.header("X-Backend") ?? "?")
        }
    }

    func testStatsAndMetricsCountExactlyTheTrafficSent() throws {
        let c = try startCluster()
        let admin = AdminClient(port: c.lb.adminPort)

        // 800 keyed requests (all 200; those first routed to the spy are retried on the next server).
        let phaseA = try send((0..<800).map { "/key/\($0)" }, port: c.lb.proxyPort)
        XCTAssertTrue(phaseA.allSatisfy { $0.status == 200 }, "every request succeeds despite the spy")
        // 100 requests the backends answer 500.
        let phaseB = try send((0..<100).map { "/status/500?i=\($0)" }, port: c.lb.proxyPort)
        XCTAssertTrue(phaseB.allSatisfy { $0.status == 500 })
        let spyAfterB = c.spy.requestCount

        // Kill b3, wait until its pooled connection is gone, then replay 100 keys of phase A.
        let b3 = c.demo[2]
        b3.process.signal(SIGKILL)
        _ = b3.process.waitForExit(timeout: 5)
        try eventually(timeout: 5, "b3's pooled connections close") {
            let servers = try admin.call("GET", "/api/stats").json["servers"] as? [[String: Any]] ?? []
            return servers.first { $0["id"] as? String == c.id("b3") }?["idle_connections"] as? Int == 0
        }
        let phaseC = try send((0..<100).map { "/key/\($0)" }, port: c.lb.proxyPort)
        XCTAssertTrue(phaseC.allSatisfy { $0.status == 200 && $0.backend != "b3" }, "b3's keys move on")
        // b3 is tried first exactly for the keys it served in phase A (the candidate order is the same).
        let servedByB3InA = Set(phaseA.filter { $0.backend == "b3" }.map(\.path))
        let b3Attempts = phaseC.filter { servedByB3InA.contains($0.path) }.count
        XCTAssertGreaterThan(b3Attempts, 5)

        // Proxy-generated errors: 3 malformed heads (400) and 2 request lines over 1024 bytes (414).
        let malformed = "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"
        for _ in 0..<3 { try rawExchange(malformed, port: c.lb.proxyPort, expect: 400) }
        let long = "GET /" + String(repeating: "a", count: 2000) + " HTTP/1.1\r\nHost: a\r\n\r\n"
        for _ in 0..<2 { try rawExchange(long, port: c.lb.proxyPort, expect: 414) }

        let spyRequests = c.spy.requestCount
        XCTAssertGreaterThan(spyAfterB, 10, "the spy owns part of the keyspace")
        var served: [String: (ok: Int, errors: Int)] = [:]
        for r in phaseA + phaseC { served[r.backend, default: (0, 0)].ok += 1 }
        for r in phaseB { served[r.backend, default: (0, 0)].errors += 1 }
        XCTAssertEqual(Set(served.keys), ["b1", "b2", "b3"])

        // /api/stats, once nothing is in flight.
        var stats: [String: Any] = [:]
        try eventually(timeout: 5, "no request in flight") {
            stats = try admin.call("GET", "/api/stats").json
            return (stats["requests"] as? [String: Any])?["in_flight"] as? Int == 0
        }
        let requests = try XCTUnwrap(stats["requests"] as? [String: Any])
        XCTAssertEqual(requests["total"] as? Int, 1000)
        XCTAssertGreaterThan(requests["per_second"] as? Double ?? 0, 0)
        let responses = try XCTUnwrap(stats["responses"] as? [String: Int])
        XCTAssertEqual(responses, ["1xx": 0, "2xx": 900, "3xx": 0, "4xx": 5, "5xx": 100])
        let proxyErrors = try XCTUnwrap(stats["proxy_errors"] as? [String: Int])
        XCTAssertEqual(proxyErrors.filter { $0.value != 0 }, ["400": 3, "414": 2])
        XCTAssertEqual((stats["connections"] as? [String: Any])?["total"] as? Int, 3 + 5)
        // A request that never had a valid head (the 400s and 414s) has no request time.
        let requestLatency = (stats["latency"] as? [String: Any])?["request"] as? [String: Any]
        XCTAssertEqual(requestLatency?["count"] as? Int, 1000)

        let servers = Dictionary(
            uniqueKeysWithValues: (stats["servers"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "?", $0) })
        XCTAssertEqual(servers.count, 4)
        for name in ["b1", "b2", "b3"] {
            let s = try XCTUnwrap(servers[c.id(name)], name)
            let want = served[name] ?? (0, 0)
            let extra = name == "b3" ? b3Attempts : 0
            XCTAssertEqual(s["requests"] as? Int, want.ok + want.errors + extra, "\(name) attempts")
            let classes = ["1xx": 0, "2xx": want.ok, "3xx": 0, "4xx": 0, "5xx": want.errors]
            XCTAssertEqual(s["responses"] as? [String: Int], classes, name)
            XCTAssertEqual(s["connect_errors"] as? Int, extra, "\(name) connect errors")
            XCTAssertEqual(s["redispatches"] as? Int, extra, "\(name) redispatches")
            XCTAssertEqual(s["retries"] as? Int, 0, name)
            XCTAssertEqual(s["state"] as? String, "up", "passive checks are off: \(name) keeps its keys")
            let latency = try XCTUnwrap(s["latency"] as? [String: [String: Any]])
            XCTAssertEqual(latency["response"]?["count"] as? Int, want.ok + want.errors, name)
            XCTAssertGreaterThan(latency["response"]?["p99"] as? Double ?? 0, 0, name)
        }
        let spy = try XCTUnwrap(servers[c.spyID])
        XCTAssertEqual(spy["requests"] as? Int, spyRequests)
        XCTAssertEqual(spy["retries"] as? Int, spyRequests, "each request sent to the spy moved on once")
        XCTAssertEqual(spy["response_errors"] as? Int, spyRequests)
        XCTAssertEqual(spy["connects_opened"] as? Int, c.spy.connectionCount)
        XCTAssertEqual(spy["responses"] as? [String: Int], ["1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0])
        let upstream = try XCTUnwrap(stats["upstream"] as? [String: Any])
        XCTAssertEqual(upstream["requests"] as? Int, 1000 + spyRequests + b3Attempts)
        XCTAssertEqual(upstream["retries"] as? Int, spyRequests)
        XCTAssertEqual(upstream["redispatches"] as? Int, b3Attempts)

        // /metrics: the same numbers under their Prometheus names.
        let metricsAnswer = try admin.call("GET", "/metrics")
        XCTAssertEqual(metricsAnswer.status, 200)
        XCTAssertEqual(metricsAnswer.response.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        let m = PromSamples(metricsAnswer.response.bodyString)
        XCTAssertEqual(m["lb_requests_received_total"], 1000)
        XCTAssertEqual(m[#"lb_responses_total{code_class="2xx"}"#], 900)
        XCTAssertEqual(m[#"lb_responses_total{code_class="4xx"}"#], 5)
        XCTAssertEqual(m[#"lb_responses_total{code_class="5xx"}"#], 100)
        XCTAssertEqual(m[#"lb_proxy_errors_total{status="400"}"#], 3)
        XCTAssertEqual(m[#"lb_proxy_errors_total{status="414"}"#], 2)
        XCTAssertEqual(m[#"lb_proxy_errors_total{status="502"}"#], 0)
        XCTAssertEqual(m["lb_connections_total"], 8)
        XCTAssertEqual(m["lb_request_duration_seconds_count"], 1000)
        XCTAssertEqual(m[#"lb_request_duration_seconds_bucket{le="+Inf"}"#], 1000)
        for name in ["b1", "b2", "b3"] {
            let id = c.id(name)
            let want = served[name] ?? (0, 0)
            let extra = name == "b3" ? b3Attempts : 0
            XCTAssertEqual(m[#"lb_requests_total{server="\#(id)",code_class="2xx"}"#], Double(want.ok), name)
            XCTAssertEqual(m[#"lb_requests_total{server="\#(id)",code_class="5xx"}"#], Double(want.errors), name)
            XCTAssertEqual(m[#"lb_upstream_connect_errors_total{server="\#(id)"}"#], Double(extra), name)
            XCTAssertEqual(m[#"lb_upstream_redispatches_total{server="\#(id)"}"#], Double(extra), name)
            let responseCount = m[#"lb_upstream_response_duration_seconds_count{server="\#(id)"}"#]
            XCTAssertEqual(responseCount, Double(want.ok + want.errors), name)
            XCTAssertEqual(m[#"lb_server_up{server="\#(id)"}"#], 1)
            XCTAssertEqual(m[#"lb_server_weight{server="\#(id)"}"#], 1)
        }
        XCTAssertEqual(m[#"lb_upstream_retries_total{server="\#(c.spyID)"}"#], Double(spyRequests))
        let shares = ["b1", "b2", "b3"].map { c.id($0) }.map { m[#"lb_server_keyspace_share{server="\#($0)"}"#] ?? 0 }
        let spyShare = m[#"lb_server_keyspace_share{server="\#(c.spyID)"}"#] ?? 0
        XCTAssertEqual(shares.reduce(0, +) + spyShare, 1, accuracy: 1e-9)
    }

    func testMetricsPassPromtoolCheck() throws {
        guard ManagedProcess.resolveExecutable("promtool") != nil else {
            throw XCTSkip("promtool not installed (Debian: apt-get install prometheus); /metrics not linted")
        }
        let c = try startCluster()
        _ = try send((0..<50).map { "/key/\($0)" } + ["/status/503", "/status/404"], port: c.lb.proxyPort)
        let body = try AdminClient(port: c.lb.adminPort).call("GET", "/metrics").response.body
        let result = ManagedProcess.run("promtool", ["check", "metrics"], input: Data(body), timeout: 30)
        let output = String(decoding: result.stdout, as: UTF8.self) + result.stderr
        XCTAssertEqual(result.status, 0, "promtool check metrics:\n\(output)")
        XCTAssertFalse(output.contains("problem") || output.contains("error"), output)
    }

    func testDrainShowsInStatsAndMetrics() throws {
        let c = try startCluster()
        let admin = AdminClient(port: c.lb.adminPort)
        let id = c.id("b2")
        let patch = try admin.call("PATCH", "/manage/servers/\(id)", body: #"{"state": "draining"}"#)
        XCTAssertEqual(patch.status, 200, patch.error)
        let servers = try admin.call("GET", "/api/stats").json["servers"] as? [[String: Any]] ?? []
        XCTAssertEqual(servers.first { $0["id"] as? String == id }?["state"] as? String, "draining")
        let m = PromSamples(try admin.call("GET", "/metrics").response.bodyString)
        XCTAssertEqual(m[#"lb_server_draining{server="\#(id)"}"#], 1)
        XCTAssertEqual(m[#"lb_server_up{server="\#(id)"}"#], 1, "draining is not down")
    }

    /// One request on its own connection; the proxy answers `expect` itself and closes.
    private func rawExchange(_ request: String, port: Int, expect status: Int) throws {
        let connection = try RawHTTPConnection(port: port, timeout: 10)
        defer { connection.close() }
        try connection.send(request)
        XCTAssertEqual(try connection.readResponse().status, status)
    }
}

/// A Prometheus text body as `series → value`, the series written exactly as exposed (`name{a="b",c="d"}`).
struct PromSamples {
    private var values: [String: Double] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let value = line[line.index(after: space)...]
            values[String(line[..<space])] = value == "+Inf" ? .infinity : Double(value)
        }
    }

    subscript(series: String) -> Double? { values[series] }
}

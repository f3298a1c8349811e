import Foundation
import XCTest

/// Panic routing (`health_check.panic`) through the real binary: three healthy `lb-demo-backend`s are marked down
/// by passive failures (three `503`s each, from their own `/status/503`), and active checks are off with a long
/// interval, so they stay down for the whole test although they answer well. The key is the query parameter
/// `k`, so `/status/503?k=N` and `/status/200?k=N` go to the same server. Every wait polls the admin API.
final class PanicRoutingTests: IntegrationTestCase {
    private struct Cluster {
        let backends: [DemoBackend]
        let lb: LBServerProcess
        /// Which backend (its name) answers each path `/status/200?k=N` while all are up.
        let owners: [String: String]
        var admin: AdminClient { AdminClient(port: lb.adminPort) }

        /// The `k` of one path the hash gives to `name`.
        func key(of name: String) throws -> String {
            let path = try XCTUnwrap(owners.first { $0.value == name }?.key, "no path of \(name) in \(owners)")
            return String(path.split(separator: "=").last!)
        }

        func id(of name: String) -> String { backends.first { $0.name == name }!.address }
    }

    private func startCluster(panic: Bool) throws -> Cluster {
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let lb = try startProxy(
            backends: backends.map(\.address),
            settings: [
                "routing": ["key": "query:k"],
                // No active probes, and an interval far beyond the test: a down server stays down (with probes
                // off, each interval counts as one pass, and `rise` of them bring a server back).
                "health_check": [
                    "enabled": false, "interval": "10m", "rise": 10, "passive_failures": 3, "panic": panic,
                ],
            ])
        let owners = try TrafficProbe.backends(port: lb.proxyPort, paths: Self.paths)
        XCTAssertEqual(Set(owners.values), ["b1", "b2", "b3"], "\(owners)")
        return Cluster(backends: backends, lb: lb, owners: owners)
    }

    static let paths = (0..<60).map { "/status/200?k=\($0)" }

    /// Three consecutive `503`s from `name` itself: passive health marks it down. Waits until the admin API says so.
    private func markDown(_ name: String, in c: Cluster) throws {
        let key = try c.key(of: name)
        let connection = try RawHTTPConnection(port: c.lb.proxyPort, timeout: 10)
        defer { connection.close() }
        for _ in 0..<3 {
            try connection.send("GET /status/503?k=\(key) HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try connection.readResponse()
            XCTAssertEqual(r.status, 503)
            XCTAssertEqual(r.header("X-Backend"), name, "the backend's own 503, not lb's")
        }
        try eventually(timeout: 10, "\(name) is down") {
            try c.admin.servers()[c.id(of: name)]?["state"] as? String == "down"
        }
    }

    private func requestStats(_ c: Cluster) throws -> [String: Any] {
        try XCTUnwrap(try c.admin.call("GET", "/api/stats").json["requests"] as? [String: Any])
    }

    func testAllServersDownByPassiveFailuresStillAnswerFromTheHashsServer() throws {
        let c = try startCluster(panic: true)
        for name in ["b1", "b2", "b3"] { try markDown(name, in: c) }
        try eventually(timeout: 10, "/api/health shows the panic") {
            let health = try c.admin.call("GET", "/api/health")
            return health.status == 503 && health.json["servers_up"] as? Int == 0
                && health.json["panic"] as? Bool == true
        }
        XCTAssertEqual(try c.admin.call("GET", "/api/servers").json["panic"] as? Bool, true)
        let before = try XCTUnwrap(try requestStats(c)["panic_routed"] as? Int)

        // Every key is answered by the server its hash gives it, as when all were up.
        XCTAssertEqual(try TrafficProbe.backends(port: c.lb.proxyPort, paths: Self.paths), c.owners)
        let after = try XCTUnwrap(try requestStats(c)["panic_routed"] as? Int)
        XCTAssertGreaterThanOrEqual(after - before, Self.paths.count, "each request was routed in panic")
        XCTAssertEqual(try requestStats(c)["no_server"] as? Int, 0)
        // Successes do not bring a server up: only `rise` passing checks do.
        XCTAssertEqual(Set(try c.admin.servers().values.compactMap { $0["state"] as? String }), ["down"])

        // HTTP/2 streams share the pick.
        if let curl = ManagedProcess.resolveExecutable("curl") {
            let key = try c.key(of: "b2")
            let h2 = ManagedProcess.run(
                curl, ["-sS", "--max-time", "10", "--http2-prior-knowledge", "-o", "/dev/null",
                       "-w", "%{http_code} %{http_version} %header{x-backend}",
                       "http://127.0.0.1:\(c.lb.proxyPort)/status/200?k=\(key)"], timeout: 20)
            XCTAssertEqual(h2.status, 0, h2.stderr)
            XCTAssertEqual(String(decoding: h2.stdout, as: UTF8.self), "200 2 b2")
        }

        let metrics = try c.admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("\nlb_panic 1\n"), metrics)
        XCTAssertTrue(metrics.contains("\nlb_panic_routed_total "), metrics)
        if let promtool = ManagedProcess.resolveExecutable("promtool") {
            let r = ManagedProcess.run(promtool, ["check", "metrics"], input: Data(metrics.utf8), timeout: 30)
            XCTAssertEqual(r.status, 0, String(decoding: r.stdout, as: UTF8.self) + r.stderr)
        }
    }

    func testWithPanicRoutingOffAllServersDownAnswers503() throws {
        let c = try startCluster(panic: false)
        for name in ["b1", "b2", "b3"] { try markDown(name, in: c) }
        let health = try c.admin.call("GET", "/api/health")
        XCTAssertEqual(health.status, 503)
        XCTAssertEqual(health.json["panic"] as? Bool, false)
        XCTAssertEqual(health.json["panic_routing"] as? Bool, false)

        let connection = try RawHTTPConnection(port: c.lb.proxyPort, timeout: 10)
        for path in Self.paths.prefix(10) {
            try connection.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try connection.readResponse()
            XCTAssertEqual(r.status, 503, path)
            XCTAssertNil(r.header("X-Backend"), "lb's own 503")
            XCTAssertEqual(r.header("Retry-After"), "1")
        }
        let requests = try requestStats(c)
        XCTAssertEqual(requests["panic_routed"] as? Int, 0)
        XCTAssertEqual(requests["no_server"] as? Int, 10)
    }

    func testOneServerUpTakesEveryKeyWithoutPanic() throws {
        let c = try startCluster(panic: true)
        try markDown("b1", in: c)
        try markDown("b3", in: c)
        let health = try c.admin.call("GET", "/api/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json["servers_up"] as? Int, 1)
        XCTAssertEqual(health.json["panic"] as? Bool, false)

        let answered = try TrafficProbe.backends(port: c.lb.proxyPort, paths: Self.paths)
        XCTAssertEqual(Set(answered.values), ["b2"], "every key goes to the one server up")
        XCTAssertEqual(try requestStats(c)["panic_routed"] as? Int, 0)
        let metrics = try c.admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("\nlb_panic 0\n"), metrics)
        XCTAssertTrue(metrics.contains("\nlb_panic_routed_total 0\n"), metrics)
    }
}

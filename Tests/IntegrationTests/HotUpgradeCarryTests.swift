import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// What a hot upgrade carries besides sockets and the server set: the counters, so `/api/stats` and `/metrics`
/// go on from the old process's values (including what it counted while draining, which arrives after the
/// upgrade command returned), and the in-memory TLS session-ticket keys, so a session made with the old
/// process resumes on its successor.
final class HotUpgradeCarryTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates()

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    /// One request on a connection of its own (`Connection: close`, so no idle keep-alive connection holds a
    /// draining process open); returns the response's status.
    private func request(_ port: Int, _ path: String) throws -> Int {
        let c = try RawHTTPConnection(port: port)
        defer { c.close() }
        try c.send("GET \(path) HTTP/1.1\r\nHost: carry\r\nConnection: close\r\n\r\n")
        return try c.readResponse().status
    }

    private func stats(_ port: Int) throws -> [String: Any] {
        try AdminClient(port: port).call("GET", "/api/stats").json
    }

    private func total(_ stats: [String: Any], _ section: String, _ key: String) -> Int {
        (stats[section] as? [String: Any])?[key] as? Int ?? -1
    }

    private func perServerRequests(_ stats: [String: Any]) -> [String: Int] {
        var out: [String: Int] = [:]
        for s in stats["servers"] as? [[String: Any]] ?? [] {
            if let id = s["id"] as? String { out[id] = s["requests"] as? Int ?? -1 }
        }
        return out
    }

    func testCountersContinueAcrossAnUpgradeWithWhatTheOldProcessCountedWhileDraining() throws {
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "c\($0)") }
        let config = try writeConfigFile([
            "workers": 2,
            "servers": backends.map { ["id": $0.name, "host": "127.0.0.1", "port": $0.port] },
            "health_check": ["interval": "200ms", "timeout": "500ms", "rise": 1, "fall": 2],
        ])
        let socket = UpgradeDriver.socketPath()
        let lb = try LBBinaries.startServer(backends: [], configFile: config, extraArguments: ["--control-socket", socket])
        let driver = UpgradeDriver(controlSocket: socket, arguments: lb.process.arguments)

        let n = 30
        let m = 20
        for i in 0..<n { XCTAssertEqual(try request(lb.proxyPort, "/before/\(i)"), 200) }
        // Its head is counted by the old process before the upgrade, its response only while that one drains:
        // only the final counters, sent after the drain, bring the response over.
        let slow = try RawHTTPConnection(port: lb.proxyPort, timeout: 30)
        defer { slow.close() }
        try slow.send("GET /slow?delay_ms=1500 HTTP/1.1\r\nHost: carry\r\nConnection: close\r\n\r\n")
        try eventually(timeout: 10, "the old process has the slow request") {
            total(try stats(lb.adminPort), "requests", "total") == n + 1
        }
        let before = try stats(lb.adminPort)
        let beforeServers = perServerRequests(before)
        XCTAssertEqual(beforeServers.values.reduce(0, +), n + 1)

        let outcome = try driver.upgrade()
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let newPID = try XCTUnwrap(outcome.newPID, outcome.output)
        // The successor's first answer already shows the old process's totals: no counter goes down.
        let first = try stats(lb.adminPort)
        XCTAssertEqual(first["pid"] as? Int, Int(newPID))
        XCTAssertGreaterThanOrEqual(total(first, "requests", "total"), n + 1, "\(first["requests"] ?? "")")
        for (id, count) in beforeServers {
            XCTAssertGreaterThanOrEqual(perServerRequests(first)[id] ?? -1, count, "server \(id) continues")
        }

        for i in 0..<m { XCTAssertEqual(try request(lb.proxyPort, "/after/\(i)"), 200) }
        let slowResponse = try slow.readResponse(timeout: 20)
        XCTAssertEqual(slowResponse.status, 200)
        XCTAssertEqual(slowResponse.header("Connection")?.lowercased(), "close", "answered by the draining process")

        let all = n + 1 + m
        try eventually(timeout: 15, "the successor shows the final counters of the old process") {
            let s = try stats(lb.adminPort)
            return (s["responses"] as? [String: Any])?["2xx"] as? Int == all
        }
        try eventually(timeout: 15, "the old process exits") { !UpgradeDriver.isRunning(lb.process.pid) }
        let after = try stats(lb.adminPort)
        XCTAssertEqual(total(after, "requests", "total"), all, "counted once each, by one process or the other")
        XCTAssertEqual(perServerRequests(after).values.reduce(0, +), all)
        for (id, count) in beforeServers {
            XCTAssertGreaterThanOrEqual(perServerRequests(after)[id] ?? -1, count, "server \(id)")
        }
        XCTAssertEqual(total(after, "requests", "in_flight"), 0, "gauges are the successor's own")

        let metrics = PromSamples(try AdminClient(port: lb.adminPort).call("GET", "/metrics").response.bodyString)
        XCTAssertEqual(metrics["lb_requests_received_total"], Double(all))
        XCTAssertEqual(metrics[#"lb_responses_total{code_class="2xx"}"#], Double(all))
        XCTAssertEqual(metrics["lb_request_duration_seconds_count"], Double(all), "the histogram adds up")
        let attempts = backends.map { metrics[#"lb_upstream_attempts_total{server="\#($0.name)"}"#] ?? -1 }
        XCTAssertEqual(attempts.reduce(0, +), Double(all))
        let twoXX = backends.map { metrics[#"lb_requests_total{server="\#($0.name)",code_class="2xx"}"#] ?? -1 }
        XCTAssertEqual(twoXX.reduce(0, +), Double(all))

        // The counters (and keys) cross only this socket: owner-only.
        var st = stat()
        XCTAssertEqual(stat(socket, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
    }

    func testATLSSessionFromTheOldProcessResumesOnItsSuccessorsWithoutAKeyFile() throws {
        guard ManagedProcess.resolveExecutable("openssl") != nil else {
            throw XCTSkip("openssl is not installed; this test needs s_client")
        }
        let certs = try Self.sharedCertificates.get()
        let backend = try LBBinaries.startDemoBackend(name: "tk")
        let config = try writeConfigFile([
            "workers": 2,
            "listeners": [["address": "127.0.0.1:0", "tls": ["certificates": [["cert": certs.cert("a"), "key": certs.key("a")]]]]],
            "servers": [["id": "tk", "host": "127.0.0.1", "port": backend.port]],
            "health_check": ["enabled": false],
        ])
        let socket = UpgradeDriver.socketPath()
        let lb = try LBBinaries.startServer(
            backends: [], configFile: config, extraArguments: ["--control-socket", socket], listen: nil,
            proxyKind: .proxyTLS)
        let driver = UpgradeDriver(controlSocket: socket, arguments: lb.process.arguments)
        let versions = ["-tls1_2", "-tls1_3"]
        for flag in versions {
            XCTAssertEqual(handshake(lb.proxyPort, certs, flag, out: sessionFile(certs, flag)), "New")
        }
        for round in 1...2 {
            let outcome = try driver.upgrade()
            XCTAssertEqual(outcome.status, 0, outcome.output)
            for flag in versions {
                XCTAssertEqual(
                    handshake(lb.proxyPort, certs, flag, in: sessionFile(certs, flag)), "Reused",
                    "\(flag): a session of the first process after \(round) upgrade(s)")
            }
        }
    }

    private func sessionFile(_ certs: TestCertificates, _ flag: String) -> String {
        certs.directory + "/carry\(flag)-\(getpid()).pem"
    }

    private func handshake(
        _ port: Int, _ certs: TestCertificates, _ flag: String, out: String? = nil, in: String? = nil
    ) -> String {
        certs.ticketHandshake(port: port, flag, out: out, in: `in`)
    }
}

import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Active health checks over loopback: the real `lb-server` probing real `lb-demo-backend` processes, with
/// checks every 200 ms, rise 2 and fall 2.
final class HealthCheckTests: IntegrationTestCase {
    private let intervalMs = 200
    private let rise = 2
    private let fall = 2
    /// Scheduling jitter (±10%), a probe timeout, process start-up and polling, on a busy 2-core machine.
    private let slack: TimeInterval = 2.5

    /// Writes a config with `backends` as servers `b1`... and fast health checks; returns its path.
    private func writeConfig(_ backends: [DemoBackend]) throws -> String {
        let servers = backends.map { #"{"id": "\#($0.name)", "host": "127.0.0.1", "port": \#($0.port)}"# }
        let text = """
            {
              "listen": "127.0.0.1:0",
              "admin": {"listen": "127.0.0.1:0"},
              "servers": [\(servers.joined(separator: ", "))],
              "health_check": {"interval": "\(intervalMs)ms", "timeout": "200ms", "rise": \(rise), "fall": \(fall)}
            }
            """
        let path = NSTemporaryDirectory() + "lb-health-\(getpid())-\(UUID().uuidString).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// `GET /api/servers`, keyed by server id.
    private func servers(_ lb: LBServerProcess) throws -> [String: [String: Any]] {
        let response = try HTTPClient.get(port: lb.adminPort, path: "/api/servers")
        XCTAssertEqual(response.status, 200)
        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        let list = object?["servers"] as? [[String: Any]] ?? []
        var byID: [String: [String: Any]] = [:]
        for s in list { if let id = s["id"] as? String { byID[id] = s } }
        return byID
    }

    private func state(of id: String, _ lb: LBServerProcess) throws -> String? {
        try servers(lb)[id]?["state"] as? String
    }

    private func startCluster() throws -> ([DemoBackend], LBServerProcess) {
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let lb = try LBBinaries.startServer(backends: [], configFile: try writeConfig(backends))
        return (backends, lb)
    }

    func testKilledBackendGoesDownWithinFallChecksAndComesBackWithinRiseChecks() throws {
        let (backends, lb) = try startCluster()
        // Every server starts up and gets a passing check (first check within one interval).
        try eventually(timeout: Double(intervalMs) / 1000 + slack, "every server has a passing last_check") {
            let all = try servers(lb)
            return all.count == 3 && all.values.allSatisfy { s in
                s["state"] as? String == "up" && (s["last_check"] as? [String: Any])?["ok"] as? Bool == true
            }
        }
        let check = try XCTUnwrap(try servers(lb)["b2"]?["last_check"] as? [String: Any])
        XCTAssertEqual(check["code"] as? Int, 200)
        XCTAssertTrue(check["error"] is NSNull, "\(check)")
        XCTAssertNotNil(check["duration_ms"] as? Int)
        XCTAssertNotNil(ISO8601DateFormatter.withFractionalSeconds.date(from: check["at"] as? String ?? ""), "\(check)")

        let victim = backends[1]
        victim.process.signal(SIGKILL)
        _ = victim.process.waitForExit(timeout: 5)
        let killedAt = Date()
        try eventually(timeout: Double(fall * intervalMs) / 1000 + slack, "b2 is down after \(fall) failed checks") {
            try state(of: "b2", lb) == "down"
        }
        let downAfter = Date().timeIntervalSince(killedAt)
        let down = try XCTUnwrap(try servers(lb)["b2"])
        let failed = try XCTUnwrap(down["last_check"] as? [String: Any])
        XCTAssertEqual(failed["ok"] as? Bool, false)
        XCTAssertTrue((failed["error"] as? String ?? "").contains("ECONNREFUSED"), "\(failed)")
        let health = try XCTUnwrap(down["health"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(health["consecutive_failures"] as? Int ?? 0, fall)
        XCTAssertEqual(health["transitions"] as? Int, 1)
        XCTAssertEqual(try state(of: "b1", lb), "up", "the other servers are untouched")
        XCTAssertEqual(try state(of: "b3", lb), "up")
        // Traffic avoids the down server: every path is answered by b1 or b3.
        for i in 0..<20 {
            let r = try HTTPClient.get(port: lb.proxyPort, path: "/while-down/\(i)")
            XCTAssertEqual(r.status, 200)
            XCTAssertNotEqual(r.header("X-Backend"), "b2")
        }

        let restarted = try ManagedProcess.start(
            try LBBinaries.path(of: .demoBackend),
            ["--port", String(victim.port), "--name", "b2", "--host", "127.0.0.1"], name: "backend-b2-again")
        _ = try restarted.waitForListening(kind: .backend, timeout: 10)
        let restartedAt = Date()
        try eventually(timeout: Double(rise * intervalMs) / 1000 + slack, "b2 is up after \(rise) passed checks") {
            try state(of: "b2", lb) == "up"
        }
        let upAfter = Date().timeIntervalSince(restartedAt)
        let up = try XCTUnwrap(try servers(lb)["b2"])
        XCTAssertEqual((up["health"] as? [String: Any])?["transitions"] as? Int, 2)
        XCTAssertGreaterThan((up["health"] as? [String: Any])?["downtime_s"] as? Double ?? 0, 0)
        let timing = String(format: "down %.2f s after SIGKILL, up %.2f s after restart", downAfter, upAfter)
        print("health: \(timing)")
        XCTAssertTrue(lb.process.log.contains("server down"), "transitions are logged")
        XCTAssertTrue(lb.process.log.contains("server up"))
    }

    func testShutdownClosesEveryCheckHandle() throws {
        let (_, lb) = try startCluster()
        // Let checks run: every server checked, then checked again (the checker's timers and probes are live;
        // some probes may be in flight at the signal).
        var firstCheck: [String: String] = [:]
        try eventually(timeout: Double(2 * intervalMs) / 1000 + slack, "every server checked twice") {
            let checkedAt = try servers(lb).compactMapValues { ($0["last_check"] as? [String: Any])?["at"] as? String }
            for (id, at) in checkedAt where firstCheck[id] == nil { firstCheck[id] = at }
            return checkedAt.count == 3 && checkedAt.allSatisfy { firstCheck[$0.key] != $0.value }
        }
        lb.process.signal(SIGTERM)
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), 0)
        XCTAssertFalse(lb.process.log.contains("handles still open"), lb.process.log)
    }
}

extension ISO8601DateFormatter {
    fileprivate static var withFractionalSeconds: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}

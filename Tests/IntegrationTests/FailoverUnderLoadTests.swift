import Foundation
import XCTest

/// Backends dying and configs changing while keep-alive clients keep sending: no client request may fail.
final class FailoverUnderLoadTests: IntegrationTestCase {
    private let paths = (0..<200).map { "/load/\($0)" }

    private func writeConfig(_ servers: [(id: String, port: Int, weight: Int)], extra: String = "") throws -> String {
        let list = servers.map { #"{"id": "\#($0.id)", "host": "127.0.0.1", "port": \#($0.port), "weight": \#($0.weight)}"# }
        let text = """
            {
              "listen": "127.0.0.1:0",
              "admin": {"listen": "127.0.0.1:0"},
              "servers": [\(list.joined(separator: ", "))],
              "health_check": {"interval": "200ms", "timeout": "200ms", "rise": 2, "fall": 2}\(extra)
            }
            """
        let path = NSTemporaryDirectory() + "lb-failover-\(getpid())-\(UUID().uuidString).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func state(_ lb: LBServerProcess, _ id: String) throws -> String? {
        let r = try HTTPClient.get(port: lb.adminPort, path: "/api/servers")
        let object = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
        let list = object?["servers"] as? [[String: Any]] ?? []
        return list.first { $0["id"] as? String == id }?["state"] as? String
    }

    /// Which backend answers each path now (one request per path, on one connection).
    private func owners(_ lb: LBServerProcess) throws -> [String: String] {
        let c = try RawHTTPConnection(port: lb.proxyPort)
        var result: [String: String] = [:]
        for p in paths {
            try c.send("GET \(p) HTTP/1.1\r\nHost: o\r\n\r\n")
            result[p] = try c.readResponse().header("X-Backend")
        }
        return result
    }

    func testKillingABackendUnderLoadFailsNoRequestAndItsKeysReturnWhenItDoes() throws {
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let config = try writeConfig(backends.map { ($0.name, $0.port, 1) })
        let lb = try LBBinaries.startServer(backends: [], configFile: config)
        let before = try owners(lb)
        let victimKeys = before.filter { $0.value == "b2" }.map(\.key)
        XCTAssertGreaterThan(victimKeys.count, 20)

        let load = LoadGenerator(port: lb.proxyPort, paths: paths, threads: 4)
        defer { load.stop() }
        try load.waitForProgress(300)
        backends[1].process.signal(SIGKILL)
        _ = backends[1].process.waitForExit(timeout: 5)
        let killed = Date()
        try eventually(timeout: 0.4 + 2.5, "b2 marked down within fall x interval") { try self.state(lb, "b2") == "down" }
        print("b2 down \(String(format: "%.2f", Date().timeIntervalSince(killed))) s after SIGKILL")
        try load.waitForProgress(500)

        // Restart it on the same port: up again within rise x interval, and its keys come back to it.
        let reborn = try ManagedProcess.start(
            try LBBinaries.path(of: .demoBackend), ["--port", String(backends[1].port), "--name", "b2"], name: "b2-again")
        _ = try reborn.waitForListening(kind: .backend)
        let restarted = Date()
        try eventually(timeout: 0.4 + 2.5, "b2 up again within rise x interval") { try self.state(lb, "b2") == "up" }
        print("b2 up \(String(format: "%.2f", Date().timeIntervalSince(restarted))) s after restart")
        try load.waitForProgress(500)
        load.stop()

        XCTAssertEqual(load.failures.count, 0, "failed requests: \(load.failures.prefix(5))")
        print("requests served under load: \(load.succeeded)")
        let after = try owners(lb)
        XCTAssertEqual(after, before, "every key is back on its original backend")
        XCTAssertFalse(victimKeys.isEmpty)
    }

    func testSighupWithAChangedConfigUnderLoadFailsNoRequest() throws {
        let backends = try (1...4).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let three = backends.prefix(3).map { ($0.name, $0.port, 1) }
        let config = try writeConfig(three)
        let lb = try LBBinaries.startServer(backends: [], configFile: config)
        let before = try owners(lb)
        let load = LoadGenerator(port: lb.proxyPort, paths: paths, threads: 4)
        defer { load.stop() }
        try load.waitForProgress(300)

        // Add b4, reweight b1, remove b3.
        let changed = [("b1", backends[0].port, 2), ("b2", backends[1].port, 1), ("b4", backends[3].port, 1)]
        try FileManager.default.removeItem(atPath: config)
        let text = try String(contentsOfFile: try writeConfig(changed), encoding: .utf8)
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        lb.process.signal(SIGHUP)
        try eventually("the new config is applied") { try self.state(lb, "b4") == "up" }
        try load.waitForProgress(500)
        load.stop()
        XCTAssertEqual(load.failures.count, 0, "failed requests: \(load.failures.prefix(5))")
        let after = try owners(lb)
        XCTAssertFalse(after.values.contains("b3"), "b3 was removed")
        XCTAssertTrue(after.values.contains("b4"), "b4 was added")
        // Keys that stayed on b2 (neither added nor removed) mostly stay: consistent hashing.
        let stayed = before.filter { $0.value == "b2" && after[$0.key] == "b2" }.count
        XCTAssertGreaterThan(stayed, before.filter { $0.value == "b2" }.count / 2)
    }

    func testSighupWithABrokenConfigKeepsTheRunningOneAndLogsTheError() throws {
        let backends = try (1...2).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let config = try writeConfig(backends.map { ($0.name, $0.port, 1) })
        let lb = try LBBinaries.startServer(backends: [], configFile: config)
        let before = try owners(lb)
        let load = LoadGenerator(port: lb.proxyPort, paths: paths, threads: 2)
        defer { load.stop() }
        try load.waitForProgress(100)
        try #"{"servers": [{"host": "127.0.0.1", "port": 70000}], "routing": {"algorithm": "nope"}}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        lb.process.signal(SIGHUP)
        try eventually("the reload error is logged") { lb.process.log.contains("config reload failed") }
        let log = lb.process.log
        XCTAssertTrue(log.contains("servers[0].port"), log)
        XCTAssertTrue(log.contains("routing.algorithm"), log)
        try load.waitForProgress(100)
        load.stop()
        XCTAssertEqual(load.failures.count, 0, "failed requests: \(load.failures.prefix(5))")
        XCTAssertEqual(try owners(lb), before, "routing unchanged")
    }
}

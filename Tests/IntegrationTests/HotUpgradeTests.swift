import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Hot binary upgrades under load, after Envoy's hot-restart hand-off test: a client loop (keep-alive and new
/// connections) runs through five consecutive upgrades and must see no refused or reset connection and no failed
/// request; a slow request started before each upgrade completes on the old process; connections opened after
/// it reach the new one. With `workers: 2`, so every worker's SO_REUSEPORT socket must be handed over.
final class HotUpgradeTests: IntegrationTestCase {
    /// A config with three demo backends, fast health checks and two workers; returns the running instance, the
    /// driver for its upgrades, and the config path.
    private func startInstance(extra: [String: Any] = [:]) throws -> (LBServerProcess, UpgradeDriver, [DemoBackend]) {
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        var settings: [String: Any] = [
            "workers": 2,
            "servers": backends.map { ["id": $0.name, "host": "127.0.0.1", "port": $0.port] },
            "health_check": ["interval": "200ms", "timeout": "500ms", "rise": 1, "fall": 2],
        ]
        settings.merge(extra) { _, new in new }
        let config = try writeConfigFile(settings)
        let socket = UpgradeDriver.socketPath()
        let lb = try LBBinaries.startServer(backends: [], configFile: config, extraArguments: ["--control-socket", socket])
        return (lb, UpgradeDriver(controlSocket: socket, arguments: lb.process.arguments), backends)
    }

    private func stats(_ lb: LBServerProcess) throws -> [String: Any] {
        try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json
    }

    /// A request that takes `delayMs` at the backend, sent on its own connection before an upgrade starts;
    /// its result (status, `Connection` header, when it ended) arrives later.
    private final class SlowRequest: @unchecked Sendable {
        private let result = Locked<(status: Int, connection: String, endedAt: Date)?>(nil)
        private let error = Locked<String?>(nil)
        private let done = DispatchSemaphore(value: 0)

        init(port: Int, delayMs: Int, tag: Int) throws {
            let connection = try RawHTTPConnection(port: port, timeout: 30)
            try connection.send("GET /slow/\(tag)?delay_ms=\(delayMs) HTTP/1.1\r\nHost: slow\r\n\r\n")
            let owned = Locked(connection)  // moves to the reading thread
            Thread { [self] in
                let connection = owned.withLock { $0 }
                do {
                    let r = try connection.readResponse(timeout: 30)
                    result.withLock { $0 = (r.status, r.header("Connection") ?? "", Date()) }
                } catch {
                    self.error.withLock { $0 = "\(error)" }
                }
                connection.close()
                done.signal()
            }.start()
        }

        func wait() -> (status: Int, connection: String, endedAt: Date)? {
            _ = done.wait(timeout: .now() + 40)
            return result.withLock { $0 }
        }

        var failure: String? { error.withLock { $0 } }
    }

    /// Five upgrades, `pause` apart, under the client loop; checks every hand-off and returns the load's counts.
    /// `slowMs` must outlast an upgrade, so that the slow request is still in flight at the hand-off: under a
    /// sanitizer an upgrade (starting an instrumented successor, its first health checks) takes several seconds,
    /// so the delay is 3 times longer there (still within the old process's 10 s shutdown_grace).
    private func upgradeFiveTimes(pause: TimeInterval, slowMs: Int) throws {
        let slowMs = Sanitizer.measuresResources ? slowMs : 3 * slowMs
        let (lb, driver, _) = try startInstance()
        let load = HandOffLoad(port: lb.proxyPort, threads: 3)
        defer { load.stop() }
        try load.waitForProgress(200)
        var current = lb.process.pid
        var previous: [Int32] = []
        var slow: [(request: SlowRequest, upgradeEnded: Date)] = []
        let started = Date()
        for round in 1...5 {
            let request = try SlowRequest(port: lb.proxyPort, delayMs: slowMs, tag: round)
            Thread.sleep(forTimeInterval: 0.05)  // accepted by the current process before the upgrade starts
            let outcome = try driver.upgrade()
            XCTAssertEqual(outcome.status, 0, "upgrade \(round): \(outcome.output)")
            guard let next = outcome.newPID else { return XCTFail("upgrade \(round) named no new pid: \(outcome.output)") }
            slow.append((request, Date()))
            XCTAssertNotEqual(next, current)
            // The admin socket was handed over too: a new connection reaches the new process.
            let s = try stats(lb)
            XCTAssertEqual(s["pid"] as? Int, Int(next), "upgrade \(round): /api/stats answered by the new process")
            XCTAssertEqual(s["upgraded_from"] as? Int, Int(current))
            // The old process listens on nothing any more, so every connection opened from now on is the new
            // one's; and it is draining, so it would answer `Connection: close`: these fresh ones get keep-alive.
            XCTAssertEqual(UpgradeDriver.listeningSockets(of: current, port: lb.proxyPort), 0, "old pid \(current)")
            XCTAssertEqual(UpgradeDriver.listeningSockets(of: next, port: lb.proxyPort), 2, "every worker's socket")
            for i in 0..<3 {
                let c = try RawHTTPConnection(port: lb.proxyPort)
                try c.send("GET /after/\(round)/\(i) HTTP/1.1\r\nHost: probe\r\n\r\n")
                let r = try c.readResponse()
                XCTAssertEqual(r.status, 200)
                XCTAssertNil(r.header("Connection"), "a connection opened after upgrade \(round) reached a draining process")
                c.close()
            }
            previous.append(current)
            current = next
            if pause > 0 { Thread.sleep(forTimeInterval: pause) }
        }
        let elapsed = Date().timeIntervalSince(started)
        try load.waitForProgress(100)
        load.stop()
        for (i, s) in slow.enumerated() {
            let r = s.request.wait()
            XCTAssertNil(s.request.failure, "slow request \(i + 1)")
            XCTAssertEqual(r?.status, 200, "slow request \(i + 1) completed")
            // Finished after its upgrade was over, with the draining process's `Connection: close`: it stayed on
            // the old process across the hand-off.
            XCTAssertEqual(r?.connection.lowercased(), "close", "slow request \(i + 1) answered by the old process")
            if let ended = r?.endedAt { XCTAssertGreaterThan(ended, s.upgradeEnded, "slow request \(i + 1)") }
        }
        let counts = load.counts
        print("hand-off load over 5 upgrades in \(String(format: "%.1f", elapsed)) s: \(counts)")
        XCTAssertEqual(counts.refused, 0, "\(counts)")
        XCTAssertEqual(counts.reset, 0, "\(counts)")
        XCTAssertEqual(counts.failed, 0, "\(counts)")
        XCTAssertGreaterThan(counts.ok, 500)
        XCTAssertTrue(UpgradeDriver.isRunning(current))
        // Every old process finishes its drain and exits (the client loop has stopped, so nothing holds one open
        // to the shutdown_grace deadline).
        try eventually(timeout: 15, "every replaced process exits") { !previous.contains(where: UpgradeDriver.isRunning) }
    }

    func testFiveSlowUpgradesUnderLoadRefuseResetAndFailNothing() throws {
        try upgradeFiveTimes(pause: 1.0, slowMs: 3000)
    }

    func testFiveUpgradesInARowSeveralPerSecondRefuseResetAndFailNothing() throws {
        try upgradeFiveTimes(pause: 0, slowMs: 2500)
    }

    func testAdminChangesAndDrainsCarryOverAnUpgrade() throws {
        let (lb, driver, backends) = try startInstance()
        let admin = AdminClient(port: lb.adminPort)
        let extra = try LBBinaries.startDemoBackend(name: "b4")
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b2", body: #"{"state":"draining"}"#).status, 200)
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b1", body: #"{"weight":3}"#).status, 200)
        let add = #"{"id":"b4","host":"127.0.0.1","port":\#(extra.port)}"#
        XCTAssertEqual(try admin.call("POST", "/manage/servers", body: add).status, 201)
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/b3").status, 200)
        _ = backends
        let outcome = try driver.upgrade()
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertEqual(try stats(lb)["pid"] as? Int, outcome.newPID.map(Int.init))
        let servers = try admin.servers()
        XCTAssertEqual(Set(servers.keys), ["b1", "b2", "b4"], "the server set the admin API left")
        XCTAssertEqual(servers["b1"]?["weight"] as? Int, 3)
        XCTAssertEqual(servers["b2"]?["state"] as? String, "draining")
        XCTAssertEqual(servers["b4"]?["state"] as? String, "up")
    }

    func testAFailedSuccessorLeavesTheRunningProcessServing() throws {
        let (lb, driver, backends) = try startInstance()
        let load = HandOffLoad(port: lb.proxyPort, threads: 2)
        defer { load.stop() }
        try load.waitForProgress(100)

        // The successor cannot load its certificate: it gives up before accepting, and says why.
        let badTLS = try driver.upgrade(extra: ["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"])
        XCTAssertEqual(badTLS.status, 1, badTLS.output)
        XCTAssertTrue(badTLS.output.contains("/nonexistent/cert.pem"), badTLS.output)
        XCTAssertTrue(badTLS.output.contains("keeps serving"), badTLS.output)

        // Its health checks all fail (the new config checks a path that answers 500) within --upgrade-timeout.
        let failing = try writeConfigFile([
            "workers": 2,
            "servers": backends.map { ["id": $0.name, "host": "127.0.0.1", "port": $0.port] },
            "health_check": ["interval": "200ms", "timeout": "500ms", "path": "/status/500"],
        ])
        var arguments = driver.arguments
        if let i = arguments.firstIndex(of: "--config") { arguments[i + 1] = failing }
        let unhealthy = try driver.upgrade(arguments: arguments, extra: ["--upgrade-timeout", "1s"])
        XCTAssertEqual(unhealthy.status, 1, unhealthy.output)
        XCTAssertTrue(unhealthy.output.contains("no server passed its first health check"), unhealthy.output)

        // Flags the command itself rejects: nothing is asked of the running process.
        let badFlags = try driver.upgrade(extra: ["--algorithm", "nope"])
        XCTAssertEqual(badFlags.status, 2, badFlags.output)
        // No lb-server at that socket.
        let nobody = UpgradeDriver(controlSocket: UpgradeDriver.socketPath(), arguments: [])
        let none = try nobody.upgrade(arguments: ["--control-socket", nobody.controlSocket, "--backend", "127.0.0.1:9"])
        XCTAssertEqual(none.status, 3, none.output)

        try load.waitForProgress(100)
        load.stop()
        XCTAssertEqual(try stats(lb)["pid"] as? Int, Int(lb.process.pid), "the original process still serves")
        XCTAssertTrue(lb.process.isRunning)
        let counts = load.counts
        XCTAssertEqual(counts.failed, 0, "\(counts)")
        // The control socket still answers, and a good upgrade still works afterwards.
        let good = try driver.upgrade()
        XCTAssertEqual(good.status, 0, good.output)
    }

    func testASecondInstanceOnALiveControlSocketIsRefused() throws {
        let (_, driver, backends) = try startInstance()
        let second = try ManagedProcess.start(
            try LBBinaries.path(of: .server),
            ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--backend", backends[0].address,
             "--control-socket", driver.controlSocket], name: "lb-second")
        XCTAssertEqual(second.waitForExit(timeout: 10), 1)
        XCTAssertTrue(second.log.contains("another lb-server answers on control socket"), second.log)
    }
}

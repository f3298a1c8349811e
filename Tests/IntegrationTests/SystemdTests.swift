import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Running under systemd: readiness over a fake `NOTIFY_SOCKET` through start, reload, hot upgrade (the successor
/// takes over `MAINPID`) and stop, and `systemd-analyze verify` on the shipped unit.
final class SystemdTests: IntegrationTestCase {
    func testReadinessReloadUpgradeAndStopAreNotified() throws {
        let notify = try FakeNotifySocket()
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let config = try writeConfigFile(["servers": [["id": "b1", "host": "127.0.0.1", "port": backend.port]]])
        let control = UpgradeDriver.socketPath()
        var arguments = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--config", config, "--control-socket", control]
        if let workers = ProcessInfo.processInfo.environment["LB_TEST_WORKERS"], !workers.isEmpty {
            arguments += ["--workers", workers]
        }
        let lb = try ManagedProcess.start(
            try LBBinaries.path(of: .server), arguments, name: "lb-server", environment: ["NOTIFY_SOCKET": notify.path])
        let port = try lb.waitForListening(kind: .proxy)
        let ready = try notify.waitFor("READY=1") { $0.contains("READY=1") }
        XCTAssertTrue(notify.messages[ready].contains("MAINPID=\(lb.pid)\n"), notify.messages[ready])
        XCTAssertEqual(try HTTPClient.get(port: port, path: "/x").status, 200, "ready means accepting")

        lb.signal(SIGHUP)
        let reloading = try notify.waitFor(from: ready + 1, "RELOADING=1") { $0.contains("RELOADING=1") }
        XCTAssertTrue(notify.messages[reloading].contains("MONOTONIC_USEC="), notify.messages[reloading])
        let reloaded = try notify.waitFor(from: reloading + 1, "READY=1 after the reload") { $0.contains("READY=1") }

        // The successor inherits NOTIFY_SOCKET from the process that starts it and moves MAINPID to itself.
        let driver = UpgradeDriver(controlSocket: control, arguments: arguments)
        let outcome = try driver.upgrade()
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let successor = try XCTUnwrap(outcome.newPID)
        let handedOver = try notify.waitFor(from: reloaded + 1, "MAINPID of the successor") {
            $0.contains("MAINPID=\(successor)\n")
        }
        XCTAssertTrue(notify.messages[handedOver].contains("READY=1"), notify.messages[handedOver])
        try eventually(timeout: 15, "the old process exits after draining") { !lb.isRunning }
        XCTAssertFalse(
            notify.messages.contains { $0.contains("STOPPING=1") }, "a hand-off must not stop the unit: \(notify.messages)")

        kill(successor, SIGTERM)
        try notify.waitFor(from: handedOver + 1, "STOPPING=1") { $0.contains("STOPPING=1") }
        try eventually(timeout: 15, "the successor exits") { !UpgradeDriver.isRunning(successor) }
    }

    func testTheShippedUnitPassesSystemdAnalyzeVerify() throws {
        guard let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first(where: {
            FileManager.default.isExecutableFile(atPath: $0)
        }) else {
            throw XCTSkip("systemd-analyze is not installed")
        }
        let unit = LBBinaries.packageRoot.appendingPathComponent("dist/lb-server.service").path
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        for required in [
            "Type=notify", "NotifyAccess=all", "ExecStartPre=/usr/bin/lb-server --check-config",
            "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE", "--control-socket",
        ] {
            XCTAssertTrue(text.contains(required), "the unit has \(required)")
        }
        // verify checks that the binaries exist: point the unit at the one just built.
        let dir = NSTemporaryDirectory() + "lb-unit-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let copy = dir + "/lb-server.service"
        try text.replacingOccurrences(of: "/usr/bin/lb-server", with: try LBBinaries.path(of: .server))
            .write(toFile: copy, atomically: true, encoding: .utf8)
        let verify = try ManagedProcess.start(analyze, ["verify", copy], name: "systemd-analyze")
        let status = verify.waitForExit(timeout: 60)
        let output = verify.log
        verify.terminate()
        XCTAssertEqual(status, 0, output)
        // Unknown keys and bad values are only warnings to systemd-analyze: there must be none.
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "", output)
    }
}

import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Standalone persistence with the real binary: the admin API's changes are written to the state file and are
/// still there after a restart, a `SIGHUP` (laid over an edited config) and a hot upgrade; a damaged state file
/// is reported and the config's servers are used, never part of the file.
final class StateFileTests: IntegrationTestCase {
    private var directory = ""
    private var statePath: String { directory + "/state.json" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lb-state-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let dir = directory
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    }

    // MARK: helpers

    /// Demo backends named b1...bN.
    private func backends(_ count: Int) throws -> [DemoBackend] {
        try (1...count).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
    }

    private func serverEntries(_ backends: [DemoBackend], weights: [String: Int] = [:]) -> [[String: Any]] {
        backends.map { ["id": $0.name, "host": "127.0.0.1", "port": $0.port, "weight": weights[$0.name] ?? 1] }
    }

    /// A config with `servers` and, unless `viaKey` is false, `server_source.state_file`. Health checks are off
    /// so that every server takes requests and routing depends on the server set alone.
    private func writeConfig(
        _ servers: [[String: Any]], viaKey: Bool = true, extra: [String: Any] = [:], to path: String? = nil
    ) throws -> String {
        var settings: [String: Any] = ["servers": servers]
        if viaKey { settings["server_source"] = ["type": "static", "state_file": statePath] }
        settings.merge(extra) { _, new in new }
        guard let path else { return try writeConfigFile(settings) }
        var config: [String: Any] = ["health_check": ["enabled": false]]
        config.merge(settings) { _, new in new }
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func start(_ config: String, extra: [String] = []) throws -> (LBServerProcess, AdminClient) {
        let lb = try LBBinaries.startServer(backends: [], configFile: config, extraArguments: extra)
        return (lb, AdminClient(port: lb.adminPort))
    }

    /// SIGTERM and a clean exit.
    private func stop(_ lb: LBServerProcess) {
        lb.process.signal(SIGTERM)
        XCTAssertEqual(lb.process.waitForExit(timeout: 15), 0, lb.process.log)
    }

    /// SIGHUP, then waits until the reload has published its routing state (every reload publishes one).
    private func reload(_ lb: LBServerProcess, _ admin: AdminClient) throws {
        let before = try generation(admin)
        lb.process.signal(SIGHUP)
        try eventually(timeout: 10, "the reload published a new routing state") { try generation(admin) > before }
    }

    private func generation(_ admin: AdminClient) throws -> Int {
        try admin.call("GET", "/api/stats").json["generation"] as? Int ?? -1
    }

    /// What a restart or reload must keep, per server: `weight state origin [runtime_changes]`.
    private func summary(_ admin: AdminClient) throws -> [String: String] {
        try admin.servers().mapValues { s in
            let changes = (s["runtime_changes"] as? [String] ?? ["?"]).joined(separator: ",")
            let weight = s["weight"] as? Int ?? -1
            return "w\(weight) \(s["state"] as? String ?? "?") \(s["origin"] as? String ?? "?") [\(changes)]"
        }
    }

    private func stateFileReport(_ admin: AdminClient) throws -> [String: Any] {
        try admin.call("GET", "/api/servers").json["state_file"] as? [String: Any] ?? [:]
    }

    private func stateFileJSON() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: statePath))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    private let paths = TrafficProbe.paths(300)

    // MARK: tests

    func testAddDrainReweightAndRemoveSurviveARestartAndAReload() throws {
        let all = try backends(4)
        let config = try writeConfig(serverEntries(Array(all[0..<3])))
        var (lb, admin) = try start(config)
        XCTAssertEqual(try stateFileReport(admin)["status"] as? String, "absent")
        XCTAssertFalse(FileManager.default.fileExists(atPath: statePath), "nothing is written before a change")

        let add = #"{"id": "b4", "host": "127.0.0.1", "port": \#(all[3].port)}"#
        XCTAssertEqual(try admin.call("POST", "/manage/servers", body: add).status, 201)
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b2", body: #"{"state": "draining"}"#).status, 200)
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b1", body: #"{"weight": 3}"#).status, 200)
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/b3").status, 200)
        // A dry run writes nothing.
        let dry = try admin.call("PATCH", "/manage/servers/b1?dry_run=1", body: #"{"weight": 7}"#)
        XCTAssertEqual(dry.status, 200)

        let file = try stateFileJSON()
        XCTAssertEqual(file["version"] as? Int, 1)
        XCTAssertEqual(file["removed"] as? [String], ["b3"])
        XCTAssertEqual(file["draining"] as? [String], ["b2"])
        XCTAssertEqual(file["weights"] as? [String: Int], ["b1": 3])
        XCTAssertEqual((file["added"] as? [[String: Any]])?.map { $0["id"] as? String }, ["b4"])

        let expected = [
            "b1": "w3 up config [weight]", "b2": "w1 draining config [state]", "b4": "w1 up runtime []",
        ]
        XCTAssertEqual(try summary(admin), expected)
        let routed = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        XCTAssertEqual(Set(routed.values), ["b1", "b4"], "b2 drained, b3 removed")

        stop(lb)
        (lb, admin) = try start(config)
        XCTAssertEqual(try summary(admin), expected, "after a restart")
        XCTAssertEqual(try TrafficProbe.backends(port: lb.proxyPort, paths: paths), routed, "after a restart")
        let report = try stateFileReport(admin)
        XCTAssertEqual(report["status"] as? String, "applied")
        XCTAssertEqual(report["loaded"] as? Bool, true)
        XCTAssertEqual(report["path"] as? String, statePath)

        try reload(lb, admin)
        XCTAssertEqual(try summary(admin), expected, "after SIGHUP")
        XCTAssertEqual(try TrafficProbe.backends(port: lb.proxyPort, paths: paths), routed, "after SIGHUP")

        // Undraining is a change like any other: it leaves the file, and a restart keeps it undrained.
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b2", body: #"{"state": "up"}"#).status, 200)
        XCTAssertEqual(try stateFileJSON()["draining"] as? [String], [])
        stop(lb)
        (lb, admin) = try start(config)
        XCTAssertEqual(try summary(admin)["b2"], "w1 up config []")
    }

    /// SIGHUP with an edited config: each runtime change wins for its server, the edits apply to the others,
    /// and once the config says what a change said, the change leaves the state file.
    func testAReloadLaysTheRuntimeChangesOverTheEditedConfig() throws {
        let all = try backends(5)
        let config = try writeConfig(serverEntries(Array(all[0..<3])), viaKey: false)
        var (lb, admin) = try start(config, extra: ["--state-file", statePath])
        _ = lb
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/b2").status, 200)
        let add = #"{"id": "b4", "host": "127.0.0.1", "port": \#(all[3].port)}"#
        XCTAssertEqual(try admin.call("POST", "/manage/servers", body: add).status, 201)
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b1", body: #"{"weight": 3}"#).status, 200)
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b3", body: #"{"state": "draining"}"#).status, 200)

        // The file now reweights b1 and b3 and adds b5; it still lists b2.
        _ = try writeConfig(
            serverEntries([all[0], all[1], all[2], all[4]], weights: ["b1": 2, "b3": 2]), viaKey: false, to: config)
        try reload(lb, admin)
        XCTAssertEqual(
            try summary(admin),
            [
                "b1": "w3 up config [weight]",  // the runtime weight wins over the file's new one
                "b3": "w2 draining config [state]",  // the drain stays; the weight is the file's
                "b4": "w1 up runtime []",  // added at runtime: stays
                "b5": "w1 up config []",  // new in the file
            ])  // b2: removed at runtime, stays removed although the file lists it
        let routed = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        XCTAssertEqual(Set(routed.values), ["b1", "b4", "b5"])

        // The file comes to agree: b1 at weight 3, b2 gone. Those changes leave the state file; the file owns
        // b1 again.
        _ = try writeConfig(
            serverEntries([all[0], all[2], all[4]], weights: ["b1": 3, "b3": 2]), viaKey: false, to: config)
        try reload(lb, admin)
        XCTAssertEqual(try summary(admin)["b1"], "w3 up config []")
        XCTAssertNil(try summary(admin)["b2"])
        let file = try stateFileJSON()
        XCTAssertEqual(file["weights"] as? [String: Int], [:])
        XCTAssertEqual(file["removed"] as? [String], [])
        XCTAssertEqual(file["draining"] as? [String], ["b3"])

        // A restart with the same flag agrees with the reload.
        let before = try summary(admin)
        stop(lb)
        (lb, admin) = try start(config, extra: ["--state-file", statePath])
        XCTAssertEqual(try summary(admin), before)
    }

    /// Garbage bytes: logged with the file and the problem, shown in /api/servers and /api/health, and the
    /// config's servers serve. The next change keeps the rejected file aside before replacing it.
    func testGarbageInTheStateFileIsReportedAndTheConfigIsUsed() throws {
        let all = try backends(3)
        let garbage: [UInt8] = [0x00, 0xFF, 0x7B, 0x22, 0x76, 0xC3, 0x28, 0x0A]
        try Data(garbage).write(to: URL(fileURLWithPath: statePath))
        let (lb, admin) = try start(try writeConfig(serverEntries(all)))
        let configOnly = ["b1": "w1 up config []", "b2": "w1 up config []", "b3": "w1 up config []"]
        XCTAssertEqual(try summary(admin), configOnly)
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.proxyPort, paths: paths).values), ["b1", "b2", "b3"])
        let report = try stateFileReport(admin)
        XCTAssertEqual(report["status"] as? String, "rejected")
        XCTAssertEqual(report["loaded"] as? Bool, false)
        XCTAssertEqual(report["rejections"] as? Int, 1)
        XCTAssertTrue((report["error"] as? String ?? "").contains("invalid JSON"), "\(report)")
        let health = try admin.call("GET", "/api/health")
        XCTAssertEqual(health.status, 200, "traffic flows: the health status stays ok")
        XCTAssertEqual(health.json["state_file_error"] as? String, report["error"] as? String)
        XCTAssertTrue(
            lb.process.log.contains("state file rejected") && lb.process.log.contains(statePath), lb.process.log)
        let metrics = try admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("\nlb_state_file_rejected 1\n"), metrics)
        XCTAssertTrue(metrics.contains("\nlb_state_file_rejections_total 1\n"), metrics)

        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b1", body: #"{"state": "draining"}"#).status, 200)
        XCTAssertEqual(try [UInt8](Data(contentsOf: URL(fileURLWithPath: statePath + ".rejected"))), garbage)
        XCTAssertEqual(try stateFileJSON()["draining"] as? [String], ["b1"])
        XCTAssertEqual(try stateFileReport(admin)["rejected_file_kept_as"] as? String, statePath + ".rejected")
    }

    /// Valid JSON naming an invalid server, next to changes that would be valid on their own: none of it is
    /// applied.
    func testAStateFileWithAnInvalidServerIsNotHalfApplied() throws {
        let all = try backends(3)
        let text = #"""
            {"version": 1, "removed": ["b1"], "draining": ["b2"], "weights": {"b3": 5},
             "added": [{"id": "b9", "host": "127.0.0.1", "port": 70000}]}
            """#
        try Data(text.utf8).write(to: URL(fileURLWithPath: statePath))
        let (lb, admin) = try start(try writeConfig(serverEntries(all)))
        XCTAssertEqual(try summary(admin), ["b1": "w1 up config []", "b2": "w1 up config []", "b3": "w1 up config []"])
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.proxyPort, paths: paths).values), ["b1", "b2", "b3"])
        XCTAssertEqual(try stateFileReport(admin)["error"] as? String, "added[0].port: 70000 is out of range 1-65535")
        XCTAssertEqual(try String(contentsOfFile: statePath, encoding: .utf8), text, "left for a person to read")
    }

    /// Changes that are each valid but cannot be applied together with this config (more servers than a maglev
    /// table of 7 slots holds): rejected whole, at start and on SIGHUP alike.
    func testChangesTheConfigCannotTakeAreRejectedWhole() throws {
        let all = try backends(2)
        let added = (1...8).map { #"{"id": "x\#($0)", "host": "127.0.0.1", "port": \#(20000 + $0)}"# }
        let text = #"{"version": 1, "removed": ["b1"], "added": [\#(added.joined(separator: ","))]}"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: statePath))
        let config = try writeConfig(
            serverEntries(all), extra: ["routing": ["algorithm": "maglev", "maglev_table_size": 7]])
        let (lb, admin) = try start(config)
        XCTAssertEqual(Set(try summary(admin).keys), ["b1", "b2"])
        let error = try stateFileReport(admin)["error"] as? String ?? ""
        XCTAssertTrue(
            error.hasPrefix("its changes cannot be applied to the config's servers: maglev table size 7"), error)
        try reload(lb, admin)
        XCTAssertEqual(Set(try summary(admin).keys), ["b1", "b2"])
        XCTAssertEqual(try stateFileReport(admin)["rejections"] as? Int, 2)
    }

    /// A state file damaged while lb runs: the next SIGHUP uses the config alone and says why; once the file is
    /// put right, the next SIGHUP applies it again.
    func testASIGHUPWithADamagedStateFileUsesTheConfigUntilTheFileIsRepaired() throws {
        let all = try backends(3)
        let (lb, admin) = try start(try writeConfig(serverEntries(all)))
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/b3").status, 200)
        let good = try Data(contentsOf: URL(fileURLWithPath: statePath))
        try Data(#"{"version": 2, "removed": ["b3"]}"#.utf8).write(to: URL(fileURLWithPath: statePath))
        try reload(lb, admin)
        XCTAssertEqual(Set(try summary(admin).keys), ["b1", "b2", "b3"])
        XCTAssertEqual(
            try stateFileReport(admin)["error"] as? String, "version: 2 is not a version this lb-server reads (only 1)")
        try good.write(to: URL(fileURLWithPath: statePath))
        try reload(lb, admin)
        XCTAssertEqual(Set(try summary(admin).keys), ["b1", "b2"])
        XCTAssertEqual(try stateFileReport(admin)["status"] as? String, "applied")
    }

    /// When the file cannot be written the change is refused whole: routing, the server list and the file stay.
    func testAChangeThatCannotBeWrittenIsRefusedAndChangesNothing() throws {
        let all = try backends(2)
        let (lb, admin) = try start(try writeConfig(serverEntries(all)))
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b1", body: #"{"weight": 2}"#).status, 200)
        let before = try summary(admin)
        let routed = try TrafficProbe.backends(port: lb.proxyPort, paths: paths)
        // A directory where the temporary file would go makes its creation fail (root ignores permissions).
        let temporary = "\(statePath).\(lb.process.pid).tmp"
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        let answer = try admin.call("DELETE", "/manage/servers/b2")
        XCTAssertEqual(answer.status, 500)
        XCTAssertTrue(
            answer.error.hasPrefix("not changed: the state file could not be written: cannot create"), answer.error)
        XCTAssertEqual(try summary(admin), before)
        XCTAssertEqual(try TrafficProbe.backends(port: lb.proxyPort, paths: paths), routed)
        XCTAssertEqual(try stateFileJSON()["weights"] as? [String: Int], ["b1": 2])
        XCTAssertNotNil(try stateFileReport(admin)["write_error"])
        try FileManager.default.removeItem(atPath: temporary)
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/b2").status, 200)
        XCTAssertNil(try stateFileReport(admin)["write_error"])
    }

    /// A missing directory is a start-up error naming the key, not a surprise at the first change.
    func testAStateFileInAMissingDirectoryStopsTheStart() throws {
        let all = try backends(1)
        let config = try writeConfig(serverEntries(all), viaKey: false)
        let process = try ManagedProcess.start(
            try LBBinaries.path(of: .server),
            ["--config", config, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
             "--state-file", directory + "/missing/state.json"],
            name: "lb-server")
        XCTAssertEqual(process.waitForExit(timeout: 10), 1)
        XCTAssertTrue(
            process.log.contains("server_source.state_file \(directory)/missing/state.json: its directory"),
            process.log)
    }

    /// `--check-config` warns about a state file a start would reject but passes (a start would serve, with the
    /// config alone); a missing directory, which stops a start, fails it.
    func testCheckConfigWarnsAboutADamagedStateFileAndFailsOnAMissingDirectory() throws {
        let all = try backends(1)
        let config = try writeConfig(serverEntries(all))
        try Data("not json".utf8).write(to: URL(fileURLWithPath: statePath))
        let check = try ManagedProcess.start(
            try LBBinaries.path(of: .server), ["--config", config, "--check-config"], name: "lb-check")
        XCTAssertEqual(check.waitForExit(timeout: 10), 0, check.log)
        XCTAssertTrue(
            check.log.contains(
                "warning: state file \(statePath) would be rejected and the config's servers used alone"),
            check.log)
        let missing = try ManagedProcess.start(
            try LBBinaries.path(of: .server),
            ["--config", config, "--check-config", "--state-file", directory + "/missing/state.json"], name: "lb-check")
        XCTAssertEqual(missing.waitForExit(timeout: 10), 2, missing.log)
        XCTAssertTrue(missing.log.contains("server_source.state_file \(directory)/missing/state.json"), missing.log)
    }

    /// A hot upgrade's successor reads the same file, laid over its own (here edited) config, as a restart
    /// would: the runtime changes stay and the config's new server joins.
    func testAHotUpgradeSuccessorAppliesTheStateFileToItsConfig() throws {
        let all = try backends(4)
        let health: [String: Any] = ["interval": "200ms", "timeout": "500ms", "rise": 1, "fall": 2]
        let config = try writeConfig(serverEntries(Array(all[0..<3])), extra: ["health_check": health])
        let socket = UpgradeDriver.socketPath()
        let (lb, admin) = try start(config, extra: ["--control-socket", socket])
        let driver = UpgradeDriver(controlSocket: socket, arguments: lb.process.arguments)
        XCTAssertEqual(try admin.call("DELETE", "/manage/servers/b3").status, 200)
        XCTAssertEqual(try admin.call("PATCH", "/manage/servers/b2", body: #"{"state": "draining"}"#).status, 200)
        _ = try writeConfig(
            serverEntries([all[0], all[1], all[2], all[3]]), extra: ["health_check": health], to: config)

        let outcome = try driver.upgrade()
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertEqual(try admin.call("GET", "/api/stats").json["pid"] as? Int, outcome.newPID.map(Int.init))
        let servers = try admin.servers()
        XCTAssertEqual(Set(servers.keys), ["b1", "b2", "b4"], "b3 stays removed; b4 is new in the config")
        XCTAssertEqual(servers["b2"]?["state"] as? String, "draining")
        XCTAssertEqual(try stateFileReport(admin)["status"] as? String, "applied")
    }
}

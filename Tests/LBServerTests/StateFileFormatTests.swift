import Foundation
import LBCore
import XCTest

@testable import LBServer

/// The state file: runtime changes as a difference from the config, the precedence rule against an edited
/// config, the strict reader, the atomic writer, and the `server_source` config keys.
final class StateFileFormatTests: XCTestCase {
    private let b1 = ServerSpec(id: "b1", host: "10.0.0.1", port: 80)
    private let b2 = ServerSpec(id: "b2", host: "10.0.0.2", port: 80)
    private let b3 = ServerSpec(id: "b3", host: "10.0.0.3", port: 80)
    private let b4 = ServerSpec(id: "b4", host: "10.0.0.4", port: 80, weight: 2)

    private func byID(_ servers: [ServerSpec]) -> [String: ServerSpec] {
        Dictionary(uniqueKeysWithValues: servers.map { ($0.id, $0) })
    }

    // MARK: the difference and its application

    func testTheDifferenceRecordsEachKindOfChangeAndAppliesBackToTheRunningSet() {
        let config = [b1, b2, b3]
        var heavier = b1
        heavier.weight = 4
        let running = [heavier, b3, b4]
        let changes = RuntimeChanges(from: config, to: running, draining: ["b3", "gone"])
        XCTAssertEqual(changes.added, [b4])
        XCTAssertEqual(changes.removed, ["b2"])
        XCTAssertEqual(changes.weights, ["b1": 4])
        XCTAssertEqual(changes.draining, ["b3"], "a drain of a server that is not running is not recorded")
        let (servers, drained) = changes.applied(to: config)
        XCTAssertEqual(byID(servers), byID(running))
        XCTAssertEqual(drained, ["b3"])
    }

    func testNoChangesWhenTheRunningSetIsTheConfig() {
        XCTAssertTrue(RuntimeChanges(from: [b1, b2], to: [b2, b1], draining: []).isEmpty)
    }

    func testAServerReAddedAtAnotherAddressIsRuntimeAndReplacesTheConfigOne() {
        let moved = ServerSpec(id: "b1", host: "10.9.9.9", port: 81)
        let changes = RuntimeChanges(from: [b1, b2], to: [moved, b2], draining: [])
        XCTAssertEqual(changes, RuntimeChanges(added: [moved]))
        XCTAssertEqual(changes.applied(to: [b1, b2]).servers, [moved, b2])
        XCTAssertEqual(RuntimeChanges.origin(of: moved, config: byID([b1, b2])), .runtime)
        XCTAssertEqual(RuntimeChanges.origin(of: b2, config: byID([b1, b2])), .config(weightChanged: false))
    }

    /// SIGHUP with an edited config: each runtime change wins for the server it names; the file's edits apply
    /// to every other server.
    func testRuntimeChangesWinOverAnEditedConfigForTheServersTheyName() {
        let changes = RuntimeChanges(added: [b4], removed: ["b2"], weights: ["b1": 5], draining: ["b3"])
        var b1Edited = b1
        b1Edited.weight = 2
        var b3Edited = b3
        b3Edited.weight = 3
        let b5 = ServerSpec(id: "b5", host: "10.0.0.5", port: 80)
        let (servers, drained) = changes.applied(to: [b1Edited, b2, b3Edited, b5])
        let result = byID(servers)
        XCTAssertNil(result["b2"], "removed at runtime: stays removed although the config still lists it")
        XCTAssertEqual(result["b4"], b4, "added at runtime: stays")
        XCTAssertEqual(result["b1"]?.weight, 5, "weight set at runtime wins over the config's new weight")
        XCTAssertEqual(result["b3"]?.weight, 3, "a server the operator only drained takes the config's weight")
        XCTAssertEqual(result["b5"], b5, "a server new in the config joins")
        XCTAssertEqual(drained, ["b3"])
    }

    /// Once the config says what a runtime change said, the change leaves the difference: the config owns the
    /// server again, and a later edit of it applies.
    func testChangesTheConfigAgreesWithAreDropped() {
        let changes = RuntimeChanges(added: [b4], removed: ["b2"], weights: ["b1": 5], draining: ["b1"])
        var b1Agreeing = b1
        b1Agreeing.weight = 5
        let config = [b1Agreeing, b3, b4]  // b2 gone from the file, b4 written in, b1 at 5
        let (servers, drained) = changes.applied(to: config)
        XCTAssertEqual(
            RuntimeChanges(from: config, to: servers, draining: drained), RuntimeChanges(draining: ["b1"]),
            "only the drain, which a config cannot express, remains")
    }

    func testEntriesNamingServersTheConfigDroppedAreSkipped() {
        let changes = RuntimeChanges(removed: ["old"], weights: ["old2": 3], draining: ["old3"])
        let (servers, drained) = changes.applied(to: [b1])
        XCTAssertEqual(servers, [b1])
        XCTAssertTrue(drained.isEmpty)
    }

    // MARK: the format

    func testEncodedChangesDecodeToTheSame() throws {
        let changes = RuntimeChanges(added: [b4, b3], removed: ["b2"], weights: ["b1": 0], draining: ["b1", "b4"])
        let bytes = StateFile.encode(changes)
        XCTAssertEqual(try StateFile.decode(bytes, source: "s.json"), changes)
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(text.contains(#""version" : 1"#), text)
        XCTAssertEqual(try StateFile.decode(StateFile.encode(RuntimeChanges()), source: "s.json"), RuntimeChanges())
    }

    private func problems(_ text: String) -> [String] {
        do {
            _ = try StateFile.decode(Array(text.utf8), source: "s.json")
            return []
        } catch {
            XCTAssertEqual(error.source, "s.json")
            return error.lines
        }
    }

    func testGarbageAndWrongVersionsAreRejected() {
        XCTAssertEqual(
            problems("\u{1}\u{2}garbage"), ["line 1, column 1: invalid JSON: expected a value, found byte 0x1"])
        XCTAssertEqual(problems(#"{"version": 1, "added": ["#).count, 1)
        XCTAssertEqual(problems("[1]"), ["expected an object, got an array"])
        XCTAssertEqual(problems(#"{"removed": []}"#), [#"version: missing; a state file starts with "version": 1"#])
        XCTAssertEqual(
            problems(#"{"version": 2, "removed": "x"}"#), ["version: 2 is not a version this lb-server reads (only 1)"])
        XCTAssertEqual(
            problems(#"{"version": "1"}"#), [#"version: "1" is not a version this lb-server reads (only 1)"#])
    }

    func testAnInvalidServerRejectsTheWholeFileNamingItsKeyPath() {
        let text = #"""
            {"version": 1, "removed": ["b1"], "draining": ["b2"],
             "added": [{"id": "ok", "host": "10.0.0.9", "port": 80}, {"id": "bad", "host": "10.0.0.8", "port": 70000}]}
            """#
        XCTAssertEqual(problems(text), ["added[1].port: 70000 is out of range 1-65535"])
        XCTAssertEqual(
            problems(#"{"version": 1, "added": [{"host": "h", "port": 1, "health_check": {}}]}"#),
            ["added[0].health_check: unknown key; valid keys here are id, host, port, weight"])
    }

    func testContradictionsDuplicatesAndBadValuesAreEachReported() {
        let text = #"""
            {"version": 1, "frobs": 1,
             "added": [{"id": "a", "host": "h", "port": 1}, {"id": "a", "host": "h", "port": 2}],
             "removed": ["a", "r", "r", ""], "weights": {"a": 2, "r": 1, "w": 1001, "v": "3"},
             "draining": ["r", 7]}
            """#
        XCTAssertEqual(
            problems(text),
            [
                "frobs: unknown key; valid keys here are version, written_at, added, removed, weights, draining",
                #"added[1].id: "a" is used by added[0] too"#,
                #"removed[2]: "r" is listed twice"#,
                #"removed[3]: "" is not a server id (non-empty, no spaces)"#,
                "draining[1]: expected a server id (a string), got a number",
                "weights.w: 1001 is out of range 0-1000",
                "weights.v: expected an integer, got a string",
                #"removed: "a" is in added too; a server is either removed or added"#,
                #"removed: "a" has a weight in weights too; a removed server has none"#,
                #"removed: "r" has a weight in weights too; a removed server has none"#,
                #"removed: "r" is in draining too; a removed server cannot drain"#,
                #"weights.a: "a" is in added, whose entry carries its weight"#,
            ])
    }

    // MARK: the disk

    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "lb-statefile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func testAWriteReplacesTheFileWholeAndLeavesNoTemporaryFile() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/state.json"
        XCTAssertEqual(StateFile.read(path: path), .absent)
        let first = RuntimeChanges(removed: ["b2"])
        XCTAssertNil(try StateFile.write(StateFile.encode(first), to: path))
        XCTAssertEqual(StateFile.read(path: path), .read(first))
        let second = RuntimeChanges(added: [b4], draining: ["b4"])
        try StateFile.write(StateFile.encode(second), to: path)
        XCTAssertEqual(StateFile.read(path: path), .read(second))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["state.json"])
    }

    func testAWriteIntoAMissingDirectoryFailsNamingTheStepAndTheReason() {
        XCTAssertThrowsError(try StateFile.write([0x7B, 0x7D], to: "/nonexistent-lb-dir/state.json")) { error in
            XCTAssertEqual(
                "\(error)", "cannot create /nonexistent-lb-dir/state.json.\(getpid()).tmp: No such file or directory")
        }
        XCTAssertEqual(
            StateFile.directoryProblem("/nonexistent-lb-dir/state.json"),
            "its directory /nonexistent-lb-dir cannot be used: No such file or directory")
        XCTAssertNil(StateFile.directoryProblem("state.json"), "a bare name lives in the working directory")
    }

    func testARejectedFileIsReportedAndCanBeKeptAside() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/state.json"
        let text = #"{"version": 1, "removed": ["b1"], "weights": {"b2": -1}}"#
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(StateFile.read(path: path), .rejected("weights.b2: -1 is out of range 0-1000"))
        XCTAssertEqual(try StateFile.setAside(path), path + ".rejected")
        XCTAssertEqual(StateFile.read(path: path), .absent)
        XCTAssertEqual(StateFile.read(path: dir), .rejected("is a directory, not a state file"))
    }

    // MARK: config

    func testServerSourceAcceptsStaticAndAStateFilePath() throws {
        let config = try parseConfig(#"{"server_source": {"type": "static", "state_file": "/var/lib/lb/state.json"}}"#)
        XCTAssertEqual(config.serverSource, LBConfig.ServerSource(type: .static, stateFile: "/var/lib/lb/state.json"))
        XCTAssertNil(try parseConfig(#"{"server_source": {"state_file": null}}"#).serverSource.stateFile)
        XCTAssertNil(LBConfig().serverSource.stateFile, "no state file unless one is named")
    }

    func testServerSourceProblemsNameTheKey() {
        assertSingleProblem(
            #"{"server_source": {"type": "zookeeper"}}"#, startsWith: "server_source.type:",
            contains: #""zookeeper" is not one of static, etcd"#)
        assertSingleProblem(
            #"{"server_source": {"state_file": ""}}"#, startsWith: "server_source.state_file:",
            contains: "must not be empty")
        assertSingleProblem(
            #"{"server_source": {"state_file": "/var/lib/lb/"}}"#, startsWith: "server_source.state_file:",
            contains: "names a directory")
        assertSingleProblem(
            #"{"server_source": {"state_file": 3}}"#, startsWith: "server_source.state_file:",
            contains: "expected a file path or null, got a number")
    }

    func testAReloadNamingAnotherStateFileIsReportedAsRestartOnly() throws {
        let old = try parseConfig(#"{"server_source": {"state_file": "/a/state.json"}}"#)
        let new = try parseConfig(#"{"server_source": {"state_file": "/b/state.json"}}"#)
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: old, to: new), ["server_source"])
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: old, to: old), [])
    }

    func testTheStateFileFlagSetsTheKeyAndIsCheckedLikeIt() throws {
        let config = try LBConfig().applying(CommandLineOverrides(stateFile: "/tmp/s.json"))
        XCTAssertEqual(config.serverSource.stateFile, "/tmp/s.json")
        XCTAssertThrowsError(try LBConfig().applying(CommandLineOverrides(stateFile: ""))) { error in
            XCTAssertEqual((error as? ConfigErrors)?.lines, [#"--state-file "": must not be empty"#])
        }
    }
}

import LBCore
import XCTest

@testable import LBServer

/// Command-line flags laid over a file, `LB_ADMIN_TOKEN`, and the whole `resolve` path.
final class ConfigOverrideTests: XCTestCase {
    private let fileConfig = try! parseConfig(
        #"""
        {"servers": [{"id": "a", "host": "h", "port": 1, "health_check": {"fall": 1}}],
         "routing": {"algorithm": "maglev", "maglev_table_size": 7}}
        """#)

    private func messages(_ overrides: CommandLineOverrides, base: LBConfig = LBConfig()) -> [String] {
        do {
            _ = try base.applying(overrides)
            return []
        } catch {
            XCTAssertEqual(error.source, "command line")
            return error.lines
        }
    }

    func testNoFlagsLeaveTheConfigUnchanged() throws {
        XCTAssertEqual(try fileConfig.applying(CommandLineOverrides()), fileConfig)
    }

    func testListenAdminAlgorithmHashKeyAndWorkersOverrideTheFile() throws {
        let config = try fileConfig.applying(
            CommandLineOverrides(
                listen: "[::1]:0", admin: "127.0.0.1:9901", algorithm: "rendezvous", hash: "murmur3-32",
                key: "header:X-User", workers: "auto"))
        XCTAssertEqual(config.listen, HostPort(host: "::1", port: 0))
        XCTAssertEqual(config.admin.listen, HostPort(host: "127.0.0.1", port: 9901))
        XCTAssertEqual(config.routing.algorithm, .rendezvous)
        XCTAssertEqual(config.routing.hash, .murmur3_32)
        XCTAssertEqual(config.routingKey, .header("x-user"))
        XCTAssertEqual(config.workers, .auto)
        XCTAssertEqual(config.servers, fileConfig.servers, "no --backend keeps the file's servers")
    }

    func testBackendFlagsReplaceTheServerListWithWeights() throws {
        let config = try fileConfig.applying(
            CommandLineOverrides(backends: ["127.0.0.1:8001", "127.0.0.1:8002@3", "[::1]:8003@0"]))
        XCTAssertEqual(
            config.servers,
            [
                ServerSpec(id: "127.0.0.1:8001", host: "127.0.0.1", port: 8001, weight: 1),
                ServerSpec(id: "127.0.0.1:8002", host: "127.0.0.1", port: 8002, weight: 3),
                ServerSpec(id: "[::1]:8003", host: "::1", port: 8003, weight: 0),
            ])
        XCTAssertEqual(config.serverHealthChecks, [:], "overrides belonged to the replaced servers")
    }

    func testBadFlagsAreAllReportedWithTheirValues() {
        let lines = messages(
            CommandLineOverrides(
                listen: "8080", backends: ["x:y", "h:0", "h:1@lots", "h:1@2000", "h:2", "h:2"], algorithm: "foo",
                hash: "md4", key: "ip", workers: "0"))
        XCTAssertEqual(
            lines,
            [
                #"--listen "8080": missing ':PORT'; write HOST:PORT, e.g. 127.0.0.1:8080"#,
                #"--algorithm "foo": not one of ring, maglev, rendezvous"#,
                #"--hash "md4": not one of \#(KeyHashName.allCases.map(\.rawValue).joined(separator: ", "))"#,
                #"--key "ip": "ip" is not a key source; use path, uri, host, client-ip, header:NAME, cookie:NAME or query:NAME"#,
                #"--workers "0": "0" is not a worker count; use an integer 1-1024 or "auto""#,
                #"--backend "x:y": port "y" is not a number"#,
                #"--backend "h:0": port 0 is out of range 1-65535"#,
                #"--backend "h:1@lots": weight "lots" is not a number"#,
                #"--backend "h:1@2000": weight 2000 is out of range 0-1000"#,
                #"--backend "h:2": h:2 is given twice"#,
            ])
    }

    func testCrossFieldRulesAreCheckedAfterFlags() {
        let lines = messages(
            CommandLineOverrides(backends: (1...7).map { "h:\($0)" }), base: fileConfig)
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(
            lines[0].hasPrefix("routing.maglev_table_size: 7 must be larger than the number of servers (7)"), lines[0])
    }

    // MARK: LB_ADMIN_TOKEN

    func testEnvironmentTokenOverridesTheFile() throws {
        var config = LBConfig()
        config.admin.token = "from-file"
        XCTAssertEqual(config.withAdminToken(fromEnvironment: ["LB_ADMIN_TOKEN": "from-env"]).admin.token, "from-env")
        XCTAssertEqual(config.withAdminToken(fromEnvironment: [:]).admin.token, "from-file")
        XCTAssertEqual(config.withAdminToken(fromEnvironment: ["LB_ADMIN_TOKEN": ""]).admin.token, "from-file")
    }

    // MARK: resolve

    func testResolveWithoutConfigOrBackendsSaysWhatToGive() {
        XCTAssertThrowsError(try LBConfig.resolve(configPath: nil, overrides: CommandLineOverrides(), environment: [:]))
        {
            XCTAssertEqual("\($0)", "command line: give --config FILE, at least one --backend HOST:PORT, --etcd URL or --dns NAME")
        }
    }

    func testResolveWithMissingFileNamesIt() {
        XCTAssertThrowsError(
            try LBConfig.resolve(configPath: "/nonexistent/x.json", overrides: CommandLineOverrides(), environment: [:])
        ) {
            XCTAssertTrue("\($0)".hasPrefix("/nonexistent/x.json: cannot open"), "\($0)")
        }
    }

    func testResolveWithOnlyBackendsUsesDefaultsAndTheEnvironment() throws {
        let config = try LBConfig.resolve(
            configPath: nil, overrides: CommandLineOverrides(backends: ["127.0.0.1:9001"]),
            environment: ["LB_ADMIN_TOKEN": "t"])
        XCTAssertEqual(config.servers.map(\.id), ["127.0.0.1:9001"])
        XCTAssertEqual(config.admin.token, "t")
        XCTAssertEqual(config.listen, LBConfig().listen)
    }

    func testResolveAcceptsAFileWithoutServersWhenBackendsAreGiven() throws {
        let path = NSTemporaryDirectory() + "lb-override-test-\(getpid()).json"
        try Data(#"{"listen": ":0"}"#.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try LBConfig.resolve(
            configPath: path, overrides: CommandLineOverrides(backends: ["h:1"]), environment: [:])
        XCTAssertEqual(config.listen.port, 0)
        XCTAssertEqual(config.servers.map(\.id), ["h:1"])
        XCTAssertThrowsError(
            try LBConfig.resolve(configPath: path, overrides: CommandLineOverrides(), environment: [:])
        ) {
            XCTAssertTrue("\($0)".contains("servers: missing"), "\($0)")
        }
    }
}

/// A reload applies servers, routing and health checks; every other change is named in one warning.
final class ReloadScopeTests: XCTestCase {
    func testRestartOnlyChangesNameEveryKeyThatAReloadCannotApply() {
        let old = LBConfig()
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: old, to: old), [])
        var new = old
        new.servers = [ServerSpec(id: "a", host: "127.0.0.1", port: 9)]
        new.healthCheck.intervalMs += 1
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: old, to: new), [], "applied by the reload itself")
        new.admin.token = "secret"
        new.retries.max += 1
        new.timeouts[.clientIdle] += 1
        new.busyPolls += 1
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: old, to: new),
                       ["admin.token", "retries", "timeouts", "busy_polls"])
    }
}

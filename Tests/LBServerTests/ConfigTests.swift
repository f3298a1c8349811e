import LBCore
import XCTest

@testable import LBServer

final class ConfigTests: XCTestCase {
    // MARK: The repository's config.json

    func testRepositoryConfigFileLoadsWithTheDemoBackends() throws {
        let path = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config.json").path
        let config = try ConfigLoader.load(path: path)
        XCTAssertEqual(config.listen, HostPort(host: "0.0.0.0", port: 8080))
        XCTAssertEqual(config.admin.listen, HostPort(host: "127.0.0.1", port: 8081))
        XCTAssertNil(config.admin.token)
        XCTAssertEqual(
            config.servers,
            [
                ServerSpec(id: "backend-1", host: "127.0.0.1", port: 8001),
                ServerSpec(id: "backend-2", host: "127.0.0.1", port: 8002),
                ServerSpec(id: "backend-3", host: "127.0.0.1", port: 8003),
            ])
        XCTAssertEqual(config.routing, RoutingConfig(algorithm: .ring, hash: .xxh3))
        XCTAssertEqual(config.routingKey, .path)
        XCTAssertTrue(config.healthCheck.enabled)
        XCTAssertEqual(config.accessLog, LBConfig.AccessLog(format: .common, path: "-"))
        XCTAssertTrue(config.accessLog.isStandardOutput)
    }

    // MARK: Defaults

    func testEmptyObjectGivesDocumentedDefaults() throws {
        let config = try parseConfig("{}")
        XCTAssertEqual(config, LBConfig())
        XCTAssertEqual(config.listen.description, "0.0.0.0:8080")
        XCTAssertEqual(config.workers, .count(1))
        XCTAssertEqual(config.admin.listen.description, "127.0.0.1:8081")
        XCTAssertEqual(
            config.routing,
            RoutingConfig(algorithm: .ring, hash: .xxh3, vnodes: 160, ringProbes: 3, maglevTableSize: 65537))
        XCTAssertEqual(config.routingKey, .path)
        XCTAssertEqual(config.healthCheck.intervalMs, 2000)
        XCTAssertEqual(config.healthCheck.timeoutMs, 1000)
        XCTAssertEqual(config.healthCheck.expectedStatus, 200...399)
        XCTAssertEqual(config.retries, LBConfig.Retries(max: 2, perTryTimeoutMs: 30_000))
        XCTAssertEqual(config.timeouts[.tunnelIdle], 300_000)
        XCTAssertNil(config.limits.maxBodyBytes)
        XCTAssertEqual(config.limits.maxHeaders, 100)
        XCTAssertFalse(config.forwarding.forwarded)
        XCTAssertEqual(config.accessLog.format, .off)
    }

    func testKeysAbsentFromASectionKeepTheirDefaults() throws {
        let config = try parseConfig(#"{"timeouts": {"client_idle": "5s"}, "limits": {"max_body_bytes": 1024}}"#)
        XCTAssertEqual(config.timeouts[.clientIdle], 5000)
        XCTAssertEqual(config.timeouts[.clientHeader], 10_000)
        XCTAssertEqual(config.limits.maxBodyBytes, 1024)
        XCTAssertEqual(config.limits.maxRequestLine, 8192)
    }

    func testThePoolHasNoFixedCapUnlessANumberIsGiven() throws {
        XCTAssertNil(try parseConfig("{}").limits.upstreamPoolSize)
        XCTAssertNil(try parseConfig(#"{"limits": {"upstream_pool_size": null}}"#).limits.upstreamPoolSize)
        XCTAssertEqual(ProxySettings(config: try parseConfig("{}")).poolSize, .max)
        // A file written for the old fixed cap keeps it.
        let capped = try parseConfig(#"{"limits": {"upstream_pool_size": 64}}"#)
        XCTAssertEqual(capped.limits.upstreamPoolSize, 64)
        XCTAssertEqual(ProxySettings(config: capped).poolSize, 64)
        assertSingleProblem(
            #"{"limits": {"upstream_pool_size": "64"}}"#, startsWith: "limits.upstream_pool_size:",
            contains: "expected an integer")
    }

    func testThePoolPurgeRunsEveryFiveSecondsUnlessSet() throws {
        XCTAssertEqual(ProxySettings(config: try parseConfig("{}")).poolPurgeMs, 5000)
        let config = try parseConfig(#"{"timeouts": {"upstream_pool_purge": "250ms"}}"#)
        XCTAssertEqual(ProxySettings(config: config).poolPurgeMs, 250)
    }

    func testServerIdDefaultsToHostPortAndWeightToOne() throws {
        let config = try parseConfig(#"{"servers": [{"host": "10.0.0.1", "port": 80}, {"host": "::1", "port": 81}]}"#)
        XCTAssertEqual(config.servers.map(\.id), ["10.0.0.1:80", "[::1]:81"])
        XCTAssertEqual(config.servers.map(\.weight), [1, 1])
    }

    func testEmptyServerListIsAllowed() throws {
        XCTAssertEqual(try parseConfig(#"{"servers": []}"#, requireServers: true).servers, [])
    }

    func testMissingServersIsAnErrorUnlessTheCommandLineGivesThem() {
        XCTAssertEqual(configProblems("{}", requireServers: false), [])
        let lines = configProblems("{}", requireServers: true)
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasPrefix("servers: missing"), lines[0])
    }

    func testWorkersAcceptsAuto() throws {
        let config = try parseConfig(#"{"workers": "auto"}"#)
        XCTAssertEqual(config.workers, .auto)
        XCTAssertEqual(config.workers.resolved(cores: 8), 8)
        XCTAssertEqual(LBConfig.WorkerCount.count(3).resolved(cores: 8), 3)
    }

    func testPerServerHealthCheckOverridesLayerOverTheGlobalSection() throws {
        let config = try parseConfig(
            #"""
            {"health_check": {"interval": "5s", "path": "/ping"},
             "servers": [{"id": "a", "host": "h", "port": 1, "health_check": {"type": "tcp", "fall": 1}},
                         {"id": "b", "host": "h", "port": 2}]}
            """#)
        let a = config.healthCheck(forServer: "a")
        XCTAssertEqual(a.type, .tcp)
        XCTAssertEqual(a.fall, 1)
        XCTAssertEqual(a.intervalMs, 5000, "inherits the global interval")
        XCTAssertEqual(a.path, "/ping")
        XCTAssertEqual(config.healthCheck(forServer: "b"), config.healthCheck)
    }

    // MARK: Validation: each rule names its key

    func testAlgorithmNotInTheListNamesTheValidOnes() {
        assertSingleProblem(
            #"{"routing": {"algorithm": "foo"}}"#, startsWith: "routing.algorithm:",
            contains: #""foo" is not one of ring, maglev, rendezvous"#)
    }

    func testHashNotInTheListNamesTheValidOnes() {
        assertSingleProblem(
            #"{"routing": {"hash": "sha256"}}"#, startsWith: "routing.hash:",
            contains: KeyHashName.allCases.map(\.rawValue).joined(separator: ", "))
    }

    func testRoutingKeyMustBeAKnownSource() {
        assertSingleProblem(#"{"routing": {"key": "body"}}"#, startsWith: "routing.key:", contains: "header:NAME")
    }

    func testVnodesOutsideOneToTenThousandIsRejected() {
        assertSingleProblem(#"{"routing": {"vnodes": 0}}"#, startsWith: "routing.vnodes:", contains: "1-10000")
        assertSingleProblem(#"{"routing": {"vnodes": 10001}}"#, startsWith: "routing.vnodes:", contains: "1-10000")
    }

    func testRingProbesOutsideOneToEightIsRejected() throws {
        assertSingleProblem(#"{"routing": {"ring_probes": 0}}"#, startsWith: "routing.ring_probes:", contains: "1-8")
        assertSingleProblem(#"{"routing": {"ring_probes": 9}}"#, startsWith: "routing.ring_probes:", contains: "1-8")
        XCTAssertEqual(try parseConfig(#"{"routing": {"ring_probes": 1}}"#).routing.ringProbes, 1)
    }

    func testBusyPollsIsAnIntegerUpToOneThousand() throws {
        XCTAssertEqual(try parseConfig("{}").busyPolls, 0)
        XCTAssertEqual(try parseConfig(#"{"busy_polls": 50}"#).busyPolls, 50)
        assertSingleProblem(#"{"busy_polls": -1}"#, startsWith: "busy_polls:", contains: "0-1000")
        assertSingleProblem(#"{"busy_polls": 1001}"#, startsWith: "busy_polls:", contains: "0-1000")
        assertSingleProblem(#"{"busy_polls": true}"#, startsWith: "busy_polls:")
    }

    func testCoalesceMicrosIsOnByDefaultAndAnIntegerUpToOneThousand() throws {
        XCTAssertEqual(try parseConfig("{}").coalesceMicros, 200)
        XCTAssertEqual(try parseConfig(#"{"coalesce_us": 0}"#).coalesceMicros, 0)
        XCTAssertEqual(try parseConfig(#"{"coalesce_us": 250}"#).coalesceMicros, 250)
        assertSingleProblem(#"{"coalesce_us": -1}"#, startsWith: "coalesce_us:", contains: "0-1000")
        assertSingleProblem(#"{"coalesce_us": 1001}"#, startsWith: "coalesce_us:", contains: "0-1000")
        assertSingleProblem(#"{"coalesce_us": "100us"}"#, startsWith: "coalesce_us:")
    }

    func testMaglevTableSizeMustBePrime() {
        assertSingleProblem(
            #"{"routing": {"maglev_table_size": 65536}}"#, startsWith: "routing.maglev_table_size:",
            contains: "not prime", "65537")
        assertSingleProblem(#"{"routing": {"maglev_table_size": 0}}"#, startsWith: "routing.maglev_table_size:")
    }

    func testMaglevTableSizeMustExceedTheServerCount() {
        assertSingleProblem(
            #"""
            {"routing": {"algorithm": "maglev", "maglev_table_size": 2},
             "servers": [{"host": "h", "port": 1}, {"host": "h", "port": 2}]}
            """#,
            startsWith: "routing.maglev_table_size:", contains: "larger than the number of servers (2)")
    }

    func testBoundedLoadMustBeNullOrAtLeastOne() throws {
        XCTAssertEqual(try parseConfig(#"{"routing": {"bounded_load": 1.25}}"#).routing.boundedLoad, 1.25)
        XCTAssertNil(try parseConfig(#"{"routing": {"bounded_load": null}}"#).routing.boundedLoad)
        assertSingleProblem(
            #"{"routing": {"bounded_load": 0.9}}"#, startsWith: "routing.bounded_load:", contains: "1.0")
    }

    func testServerPortOutOfRangeIsNamedByIndex() {
        assertSingleProblem(
            #"{"servers": [{"host": "a", "port": 1}, {"host": "b", "port": 2}, {"host": "c", "port": 70000}]}"#,
            startsWith: "servers[2].port:", contains: "70000 is out of range 1-65535")
    }

    func testServerHostMustBePresentAndNonEmpty() {
        assertSingleProblem(#"{"servers": [{"port": 1}]}"#, startsWith: "servers[0].host:", contains: "missing")
        assertSingleProblem(
            #"{"servers": [{"host": "", "port": 1}]}"#, startsWith: "servers[0].host:", contains: "empty")
        assertSingleProblem(
            #"{"servers": [{"host": "h:80", "port": 1}]}"#, startsWith: "servers[0].host:", contains: "port")
    }

    func testServerPortIsRequired() {
        assertSingleProblem(#"{"servers": [{"host": "h"}]}"#, startsWith: "servers[0].port:", contains: "missing")
    }

    func testServerWeightMustBeZeroToThousand() throws {
        XCTAssertEqual(try parseConfig(#"{"servers": [{"host": "h", "port": 1, "weight": 0}]}"#).servers[0].weight, 0)
        assertSingleProblem(
            #"{"servers": [{"host": "h", "port": 1, "weight": 1001}]}"#, startsWith: "servers[0].weight:",
            contains: "0-1000")
    }

    func testDuplicateServerIdsNameBothEntries() {
        assertSingleProblem(
            #"{"servers": [{"id": "a", "host": "h", "port": 1}, {"id": "a", "host": "h", "port": 2}]}"#,
            startsWith: "servers[1].id:", contains: #""a" is used by servers[0] too"#)
    }

    func testDuplicateDefaultIdsAreReportedOnTheServer() {
        assertSingleProblem(
            #"{"servers": [{"host": "h", "port": 1}, {"host": "h", "port": 1}]}"#,
            startsWith: "servers[1]:", contains: #""h:1""#, "servers[0]")
    }

    func testHealthCheckRules() {
        assertSingleProblem(
            #"{"health_check": {"type": "udp"}}"#, startsWith: "health_check.type:", contains: "http, tcp")
        assertSingleProblem(
            #"{"health_check": {"path": "health"}}"#, startsWith: "health_check.path:", contains: "\"/\"")
        assertSingleProblem(#"{"health_check": {"rise": 0}}"#, startsWith: "health_check.rise:")
        assertSingleProblem(#"{"health_check": {"fall": 0}}"#, startsWith: "health_check.fall:")
        assertSingleProblem(
            #"{"health_check": {"interval": 0}}"#, startsWith: "health_check.interval:", contains: "greater than 0")
        assertSingleProblem(
            #"{"servers": [{"host": "h", "port": 1, "health_check": {"rise": 0}}]}"#,
            startsWith: "servers[0].health_check.rise:")
    }

    func testExpectedStatusMustBeAnOrderedRangeWithinHundredToFiveNinetyNine() throws {
        XCTAssertEqual(
            try parseConfig(#"{"health_check": {"expected_status": "200-299"}}"#).healthCheck.expectedStatus, 200...299)
        XCTAssertEqual(
            try parseConfig(#"{"health_check": {"expected_status": "204"}}"#).healthCheck.expectedStatus, 204...204)
        for bad in ["99-200", "300-200", "200-600", "2xx", "200-", "-", "200-300-400"] {
            assertSingleProblem(
                #"{"health_check": {"expected_status": "\#(bad)"}}"#, startsWith: "health_check.expected_status:")
        }
    }

    func testLimitsMustBePositive() {
        for key in [
            "max_request_line", "max_header_bytes", "max_headers", "max_body_bytes", "max_client_connections",
            "upstream_pool_size", "max_connections_per_client",
        ] {
            assertSingleProblem(#"{"limits": {"\#(key)": 0}}"#, startsWith: "limits.\(key):", contains: "less than 1")
        }
    }

    func testEveryTimeoutRejectsZeroAndBadUnits() {
        for key in Timeout.allCases.map(\.key) {
            assertSingleProblem(#"{"timeouts": {"\#(key)": 0}}"#, startsWith: "timeouts.\(key):")
            assertSingleProblem(#"{"timeouts": {"\#(key)": "3x"}}"#, startsWith: "timeouts.\(key):", contains: #""3x""#)
        }
        assertSingleProblem(#"{"retries": {"per_try_timeout": "-1s"}}"#, startsWith: "retries.per_try_timeout:")
    }

    func testAddressesInTheFileAreValidated() {
        assertSingleProblem(#"{"listen": "8080"}"#, startsWith: "listen:", contains: "HOST:PORT")
        assertSingleProblem(
            #"{"admin": {"listen": "x:y"}}"#, startsWith: "admin.listen:", contains: #"port "y" is not a number"#)
        assertSingleProblem(
            #"{"listen": "127.0.0.1:9000", "admin": {"listen": "127.0.0.1:9000"}}"#, startsWith: "admin.listen:",
            contains: "same address")
    }

    func testAdminTokenMustBeANonEmptyStringOrNull() throws {
        XCTAssertEqual(try parseConfig(#"{"admin": {"token": "s3cret"}}"#).admin.token, "s3cret")
        assertSingleProblem(#"{"admin": {"token": ""}}"#, startsWith: "admin.token:")
        assertSingleProblem(#"{"admin": {"token": 42}}"#, startsWith: "admin.token:", contains: "string or null")
    }

    func testAccessLogFormatAndPath() throws {
        XCTAssertEqual(
            try parseConfig(#"{"access_log": {"format": "json", "path": "/var/log/lb.log"}}"#).accessLog.path,
            "/var/log/lb.log")
        assertSingleProblem(
            #"{"access_log": {"format": "combined"}}"#, startsWith: "access_log.format:", contains: "off, common, json")
        assertSingleProblem(#"{"access_log": {"path": ""}}"#, startsWith: "access_log.path:")
    }

    func testWorkersMustBePositiveOrAuto() {
        assertSingleProblem(#"{"workers": 0}"#, startsWith: "workers:")
        assertSingleProblem(#"{"workers": "many"}"#, startsWith: "workers:", contains: "\"auto\"")
        assertSingleProblem(#"{"workers": true}"#, startsWith: "workers:")
    }

    // MARK: Unknown keys and wrong types

    func testUnknownTopLevelKeySuggestsTheClosestOne() {
        assertSingleProblem(
            #"{"servres": []}"#, startsWith: "servres:", contains: "unknown key (did you mean servers?)")
    }

    func testUnknownNestedKeySuggestsTheClosestOne() {
        assertSingleProblem(
            #"{"timeouts": {"client_heder": "1s"}}"#,
            startsWith: "timeouts.client_heder:", contains: "unknown key (did you mean client_header?)")
        assertSingleProblem(
            #"{"servers": [{"host": "h", "port": 1, "wieght": 2}]}"#, startsWith: "servers[0].wieght:",
            contains: "did you mean weight?")
    }

    func testUnknownKeyWithNothingCloseListsTheValidKeys() {
        assertSingleProblem(
            #"{"retries": {"zzzzzz": 1}}"#, startsWith: "retries.zzzzzz:", contains: "max, per_try_timeout")
    }

    func testKeyGivenTwiceIsReported() {
        assertSingleProblem(#"{"listen": ":1", "listen": ":2"}"#, startsWith: "listen:", contains: "twice")
    }

    func testWrongTypesNameWhatWasExpectedAndWhatWasGiven() {
        assertSingleProblem(
            #"{"servers": [{"host": "h", "port": "8080"}]}"#, startsWith: "servers[0].port:",
            contains: #"expected an integer, got a string ("8080")"#)
        assertSingleProblem(
            #"{"routing": {"vnodes": 1.5}}"#, startsWith: "routing.vnodes:", contains: "got a number (1.5)")
        assertSingleProblem(
            #"{"forwarding": {"forwarded": "yes"}}"#, startsWith: "forwarding.forwarded:", contains: "true or false")
        assertSingleProblem(
            #"{"routing": {"algorithm": 3}}"#, startsWith: "routing.algorithm:", contains: "expected a string")
        assertSingleProblem(#"{"timeouts": []}"#, startsWith: "timeouts:", contains: "expected an object, got an array")
        assertSingleProblem(#"{"servers": {}}"#, startsWith: "servers:", contains: "array")
        assertSingleProblem(#"{"servers": [7]}"#, startsWith: "servers[0]:", contains: "expected an object")
    }

    // MARK: Many problems at once

    func testEveryProblemInAFileIsReportedAtOnce() {
        let json = #"""
            {
              "routing": {"algorithm": "foo", "vnodes": 0},
              "servers": [{"id": "a", "host": "h", "port": 1}, {"id": "a", "host": "h", "port": 70000}],
              "timeouts": {"client_heder": "1s", "client_idle": "3x"},
              "bogus": 1
            }
            """#
        do {
            _ = try parseConfig(json)
            XCTFail("expected errors")
        } catch {
            XCTAssertEqual(error.source, "test.json")
            XCTAssertEqual(
                error.problems.map(\.location),
                [
                    "bogus", "routing.algorithm", "routing.vnodes", "servers[1].port", "timeouts.client_heder",
                    "timeouts.client_idle",
                ])
            XCTAssertTrue(error.description.hasPrefix("test.json: 6 problems\n  bogus: unknown key"), error.description)
        }
    }

    // MARK: Files and syntax

    func testMissingFileNamesThePathAndTheReason() {
        do {
            _ = try ConfigLoader.load(path: "/nonexistent/lb.json")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "/nonexistent/lb.json: cannot open: No such file or directory")
        }
    }

    func testDirectoryIsNotAConfigFile() {
        XCTAssertThrowsError(try ConfigLoader.load(path: NSTemporaryDirectory())) {
            XCTAssertTrue("\($0)".contains("is a directory"), "\($0)")
        }
    }

    func testInvalidJSONReportsLineAndColumn() {
        let lines = configProblems("{\n  \"listen\": \":80\"\n  \"workers\": 2\n}")
        XCTAssertEqual(
            lines, [#"line 3, column 3: invalid JSON: expected ',' or '}' after the value of "listen", found '"'"#])
    }

    func testTrailingCommaAndCommentsAreSyntaxErrors() {
        XCTAssertEqual(
            configProblems(#"{"workers": 1,}"#), ["line 1, column 15: invalid JSON: trailing comma before '}'"])
        XCTAssertEqual(
            configProblems("// hi\n{}"), ["line 1, column 1: invalid JSON: comments are not allowed in JSON"])
    }

    func testEmptyFileAndNonObjectTopLevelAreRejected() {
        XCTAssertEqual(
            configProblems("  \n"), ["line 2, column 1: invalid JSON: the file is empty; expected a JSON object"])
        XCTAssertEqual(configProblems("[]"), ["the top level must be a JSON object ({ ... }), got an array"])
    }

    func testLoadReadsAFileFromDisk() throws {
        let path = NSTemporaryDirectory() + "lb-config-test-\(getpid()).json"
        try Data(#"{"servers": [{"host": "h", "port": 9}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try ConfigLoader.load(path: path).servers.map(\.id), ["h:9"])
    }
}

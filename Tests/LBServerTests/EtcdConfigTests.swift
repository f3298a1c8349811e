import XCTest

@testable import LBServer

/// `server_source.type: etcd` in the file and `--etcd`/`--cluster` on the command line.
final class EtcdConfigTests: XCTestCase {
    private let etcdSource =
        #"{"server_source": {"type": "etcd", "endpoints": ["http://127.0.0.1:2379", "http://10.0.0.2:2379/"], "cluster": "blue"}}"#

    func testAnEtcdSourceNeedsNoServersAndGivesTheClusterPrefix() throws {
        let config = try parseConfig(etcdSource, requireServers: true)
        XCTAssertEqual(config.serverSource.type, .etcd)
        let etcd = try XCTUnwrap(config.serverSource.etcd)
        XCTAssertEqual(
            etcd.endpoints, [HostPort(host: "127.0.0.1", port: 2379), HostPort(host: "10.0.0.2", port: 2379)])
        XCTAssertEqual(etcd.serversPrefix, "/lb/blue/servers/")
        XCTAssertEqual(etcd.dialTimeoutMs, LBConfig.Etcd.defaultDialTimeoutMs)
        XCTAssertTrue(config.servers.isEmpty)
    }

    func testCredentialsAndDialTimeoutAreRead() throws {
        let config = try parseConfig(
            #"""
            {"server_source": {"type": "etcd", "endpoints": ["http://h:1"], "cluster": "c", "username": "u",
             "password": "p", "dial_timeout": "750ms"}}
            """#)
        XCTAssertEqual(
            config.serverSource.etcd,
            LBConfig.Etcd(
                endpoints: [HostPort(host: "h", port: 1)], cluster: "c", username: "u", password: "p",
                dialTimeoutMs: 750))
    }

    func testTheLeaseIsWholeSecondsAndTheInstanceIDOneKeySegment() throws {
        let base = #""type": "etcd", "endpoints": ["http://h:1"], "cluster": "c""#
        let config = try parseConfig(#"{"server_source": {\#(base), "lease_ttl": "4s", "instance_id": "lb-1"}}"#)
        XCTAssertEqual(config.serverSource.etcd?.leaseTTLSeconds, 4)
        XCTAssertEqual(config.serverSource.etcd?.instanceID, "lb-1")
        XCTAssertEqual(try parseConfig(#"{"server_source": {\#(base)}}"#).serverSource.etcd?.leaseTTLSeconds, 10)
        assertSingleProblem(
            #"{"server_source": {\#(base), "lease_ttl": "1500ms"}}"#,
            startsWith: "server_source.lease_ttl: must be whole seconds from 2 to 300")
        assertSingleProblem(
            #"{"server_source": {\#(base), "instance_id": "a/b"}}"#, startsWith: "server_source.instance_id:")
    }

    func testMissingEndpointsAndClusterAreNamed() {
        XCTAssertEqual(
            configProblems(#"{"server_source": {"type": "etcd"}}"#),
            [
                #"server_source.endpoints: missing; list the etcd members' client URLs, e.g. ["http://127.0.0.1:2379"]"#,
                "server_source.cluster: missing; name this group of lb instances (their servers are under /lb/NAME/servers/)",
            ])
    }

    func testBadEndpointsAreNamedByIndex() {
        let lines = configProblems(
            #"""
            {"server_source": {"type": "etcd", "cluster": "c", "endpoints": ["https://h:1", "h:2", 3, "http://h:0"]}}
            """#)
        XCTAssertEqual(lines.count, 4, "\(lines)")
        XCTAssertTrue(
            lines[0].hasPrefix("server_source.endpoints[0]: \"https://h:1\": https is not supported"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("server_source.endpoints[1]: \"h:2\" is not a URL"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("server_source.endpoints[2]: expected a URL string"), lines[2])
        XCTAssertTrue(lines[3].hasPrefix("server_source.endpoints[3]: \"http://h:0\""), lines[3])
    }

    func testAClusterNameIsOneKeySegment() {
        assertSingleProblem(
            #"{"server_source": {"type": "etcd", "endpoints": ["http://h:1"], "cluster": "a/b"}}"#,
            startsWith: "server_source.cluster:", contains: "only letters, digits")
    }

    func testAPasswordNeedsAUsername() {
        assertSingleProblem(
            #"{"server_source": {"type": "etcd", "endpoints": ["http://h:1"], "cluster": "c", "password": "p"}}"#,
            startsWith: "server_source.password: needs username")
    }

    func testEtcdKeysNeedTheEtcdTypeAndTheStateFileTheStaticOne() {
        assertSingleProblem(
            #"{"server_source": {"endpoints": ["http://h:1"]}}"#,
            startsWith: "server_source.endpoints: only with \"type\": \"etcd\"")
        assertSingleProblem(
            #"{"server_source": {"type": "etcd", "endpoints": ["http://h:1"], "cluster": "c", "state_file": "/x"}}"#,
            startsWith: "server_source.state_file: only with \"type\": \"static\"")
    }

    func testServersInTheFileConflictWithAnEtcdSource() {
        assertSingleProblem(
            #"{"servers": [], "server_source": {"type": "etcd", "endpoints": ["http://h:1"], "cluster": "c"}}"#,
            startsWith: "servers: with server_source.type etcd the servers come from etcd")
    }

    func testEtcdAndClusterFlagsSelectTheEtcdSourceWithoutBackends() throws {
        let config = try LBConfig.resolve(
            configPath: nil,
            overrides: CommandLineOverrides(etcd: "http://127.0.0.1:1,http://127.0.0.1:2", cluster: "x"),
            environment: [:])
        XCTAssertEqual(config.serverSource.type, .etcd)
        XCTAssertEqual(config.serverSource.etcd?.endpoints.map(\.port), [1, 2])
        XCTAssertEqual(config.serverSource.etcd?.prefix, "/lb/x/")
    }

    func testEtcdFlagProblemsAreAllReported() {
        XCTAssertThrowsError(
            try LBConfig().applying(
                CommandLineOverrides(
                    backends: ["127.0.0.1:1"], stateFile: "/tmp/s.json", etcd: "http://127.0.0.1:1"))
        ) { error in
            XCTAssertEqual(
                (error as? ConfigErrors)?.lines,
                [
                    #"--etcd "http://127.0.0.1:1": cannot be combined with --backend: the servers come from etcd"#,
                    #"--state-file "/tmp/s.json": cannot be combined with --etcd: etcd keeps the servers itself"#,
                    #"--etcd "http://127.0.0.1:1": needs --cluster NAME: the servers are read from /lb/NAME/servers/"#,
                ])
        }
        XCTAssertThrowsError(try LBConfig().applying(CommandLineOverrides(cluster: "x"))) { error in
            XCTAssertEqual(
                (error as? ConfigErrors)?.lines,
                [
                    #"--cluster "x": needs --etcd URL (or server_source.type etcd in the file)"#
                ])
        }
    }

    func testClusterFlagRenamesTheFilesCluster() throws {
        let file = try parseConfig(etcdSource)
        let config = try file.applying(CommandLineOverrides(cluster: "green"))
        XCTAssertEqual(config.serverSource.etcd?.serversPrefix, "/lb/green/servers/")
        XCTAssertEqual(config.serverSource.etcd?.endpoints.count, 2)
    }
}

import XCTest

@testable import LBServer

/// `server_source.type: dns` in the file and `--dns`/`--dns-port` on the command line.
final class DNSConfigTests: XCTestCase {
    private func source(_ dns: String) -> String { #"{"server_source": {"type": "dns", "dns": \#(dns)}}"# }

    func testAnAddressNameWithAllItsSettingsIsRead() throws {
        let config = try parseConfig(
            source(
                #"""
                {"name": "backends.example.com.", "port": 8080, "resolvers": ["127.0.0.1:5353", "10.0.0.53", "[::1]:53"],
                 "min_ttl": "2s", "max_ttl": "1m", "nxdomain_hold": "45s", "timeout": "500ms", "family": "ipv4"}
                """#), requireServers: true)
        XCTAssertEqual(config.serverSource.type, .dns)
        XCTAssertEqual(
            config.serverSource.dns,
            LBConfig.DNS(
                name: "backends.example.com", port: 8080,
                resolvers: [
                    HostPort(host: "127.0.0.1", port: 5353), HostPort(host: "10.0.0.53", port: 53),
                    HostPort(host: "::1", port: 53),
                ],
                minTTLMs: 2000, maxTTLMs: 60_000, nxdomainHoldMs: 45_000, timeoutMs: 500, family: .ipv4))
        XCTAssertTrue(config.servers.isEmpty)
    }

    func testAnSRVNameNeedsNoPortAndTakesTheDefaults() throws {
        let dns = try XCTUnwrap(try parseConfig(source(#"{"name": "_http._tcp.example.com"}"#)).serverSource.dns)
        XCTAssertTrue(dns.isSRV)
        XCTAssertNil(dns.port)
        XCTAssertEqual(dns.resolvers, [])
        XCTAssertEqual(dns.minTTLMs, LBConfig.DNS.defaultMinTTLMs)
        XCTAssertEqual(dns.maxTTLMs, LBConfig.DNS.defaultMaxTTLMs)
        XCTAssertEqual(dns.family, .any)
    }

    func testEachBadFieldIsNamedWithItsProblem() {
        assertSingleProblem(source(#"{"port": 80}"#), startsWith: "server_source.dns.name: missing")
        assertSingleProblem(
            source(#"{"name": "a..b", "port": 80}"#), startsWith: "server_source.dns.name:", contains: "empty label")
        assertSingleProblem(
            source(#"{"name": "a b", "port": 80}"#), startsWith: "server_source.dns.name:", contains: "letters")
        assertSingleProblem(
            source(#"{"name": "_http.example.com"}"#), startsWith: "server_source.dns.name:",
            contains: "_service._proto.NAME")
        assertSingleProblem(source(#"{"name": "web.test"}"#), startsWith: "server_source.dns.port: missing")
        assertSingleProblem(
            source(#"{"name": "web.test", "port": 0}"#), startsWith: "server_source.dns.port: 0 is out of range 1-65535"
        )
        assertSingleProblem(
            source(#"{"name": "_http._tcp.test", "port": 80}"#),
            startsWith: "server_source.dns.port: only for an A/AAAA name")
        assertSingleProblem(
            source(#"{"name": "web.test", "port": 80, "resolvers": ["dns.example:53"]}"#),
            startsWith: "server_source.dns.resolvers[0]:", contains: "not an IP address")
        assertSingleProblem(
            source(#"{"name": "web.test", "port": 80, "resolvers": []}"#),
            startsWith: "server_source.dns.resolvers: must list")
        assertSingleProblem(
            source(#"{"name": "web.test", "port": 80, "min_ttl": "10s", "max_ttl": "5s"}"#),
            startsWith: "server_source.dns.max_ttl: min_ttl (10s) must not be more than max_ttl (5s)")
        assertSingleProblem(
            source(#"{"name": "web.test", "port": 80, "nxdomain_hold": "soon"}"#),
            startsWith: "server_source.dns.nxdomain_hold:", contains: "not a duration")
        assertSingleProblem(
            source(#"{"name": "web.test", "port": 80, "family": "ipv5"}"#),
            startsWith: "server_source.dns.family:", contains: "any, ipv4, ipv6")
        assertSingleProblem(
            source(#"{"name": "web.test", "port": 80, "ttl": 5}"#), startsWith: "server_source.dns.ttl: unknown key")
    }

    func testKeysOfOtherSourcesAreRefused() {
        assertSingleProblem(
            #"{"server_source": {"type": "dns"}}"#, startsWith: "server_source.dns: missing; give at least the name")
        assertSingleProblem(
            #"{"server_source": {"type": "static", "dns": {"name": "a"}}}"#,
            startsWith: #"server_source.dns: only with "type": "dns""#)
        assertSingleProblem(
            #"{"server_source": {"type": "dns", "cluster": "c", "dns": {"name": "a", "port": 1}}}"#,
            startsWith: #"server_source.cluster: only with "type": "etcd""#)
        assertSingleProblem(
            #"{"server_source": {"type": "dns", "state_file": "/tmp/s", "dns": {"name": "a", "port": 1}}}"#,
            startsWith: #"server_source.state_file: only with "type": "static""#)
        assertSingleProblem(
            #"{"servers": [], "server_source": {"type": "dns", "dns": {"name": "a", "port": 1}}}"#,
            startsWith: "servers: with server_source.type dns the servers come from DNS")
    }

    func testTheDNSFlagsSelectTheSourceAndKeepTheFilesOtherSettings() throws {
        let file = try parseConfig(source(#"{"name": "old.test", "port": 1, "resolvers": ["127.0.0.1:5353"]}"#))
        let config = try file.applying(CommandLineOverrides(dns: "new.test", dnsPort: "8080"))
        XCTAssertEqual(config.serverSource.dns?.name, "new.test")
        XCTAssertEqual(config.serverSource.dns?.port, 8080)
        XCTAssertEqual(config.serverSource.dns?.resolvers, [HostPort(host: "127.0.0.1", port: 5353)])
        let portOnly = try file.applying(CommandLineOverrides(dnsPort: "9090"))
        XCTAssertEqual(portOnly.serverSource.dns?.port, 9090)

        let srv = try LBConfig(servers: [.init(host: "h", port: 1)]).applying(CommandLineOverrides(dns: "_h._tcp.x"))
        XCTAssertEqual(srv.serverSource.type, .dns)
        XCTAssertTrue(srv.servers.isEmpty, "the file's servers give way to DNS")
        XCTAssertTrue(CommandLineOverrides(dns: "x").suppliesServers)
    }

    func testBadDNSFlagsAreNamed() {
        func problems(_ o: CommandLineOverrides) -> [String] {
            do {
                _ = try LBConfig().applying(o)
                return []
            } catch { return error.lines }
        }
        XCTAssertEqual(
            problems(CommandLineOverrides(dns: "web.test")),
            [#"--dns "web.test": needs --dns-port N: the A/AAAA records give only addresses"#])
        XCTAssertEqual(
            problems(CommandLineOverrides(dns: "web.test", dnsPort: "0")),
            [#"--dns-port "0": is not a port number 1-65535"#])
        XCTAssertEqual(
            problems(CommandLineOverrides(dnsPort: "80")),
            [#"--dns-port "80": needs --dns NAME (or server_source.type dns in the file)"#])
        XCTAssertEqual(
            problems(CommandLineOverrides(backends: ["127.0.0.1:1"], dns: "w.test", dnsPort: "80")),
            [#"--dns "w.test": cannot be combined with --backend: the servers come from DNS"#])
        XCTAssertEqual(
            problems(CommandLineOverrides(dns: "_h._tcp.x", dnsPort: "80")),
            [#"--dns-port "80": an SRV name's records give each port; leave this out"#])
    }
}

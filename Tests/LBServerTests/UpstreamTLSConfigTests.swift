import XCTest

@testable import LBServer

/// `upstream_tls` and a server's `tls`: how the two layer, and what is refused with the key named.
final class UpstreamTLSConfigTests: XCTestCase {
    private func load(_ json: String) throws -> LBConfig { try parseConfig(json) }

    private func problems(_ json: String) -> String { configProblems(json).joined(separator: "\n") }

    func testServersTakeUpstreamTLSAndTheirOwnTLSKeyOverridesIt() throws {
        let config = try load(#"""
            {"upstream_tls": {"ca_file": "ca.pem", "server_name": "api.internal", "min_version": "1.3",
                              "client_certificate": {"cert": "lb.pem", "key": "lb.key"}, "session_reuse": false},
             "servers": [
               {"id": "a", "host": "10.0.0.1", "port": 443},
               {"id": "b", "host": "10.0.0.2", "port": 80, "tls": false},
               {"id": "c", "host": "c.internal", "port": 443, "tls": {"server_name": null, "verify": false}},
               {"id": "d", "host": "10.0.0.4", "port": 443, "tls": true}]}
            """#)
        let a = try XCTUnwrap(config.upstreamTLS(forServer: "a"))
        XCTAssertEqual(a.caFile, "ca.pem")
        XCTAssertEqual(a.serverName, "api.internal")
        XCTAssertEqual(a.minVersion, .tls13)
        XCTAssertEqual(a.clientCertificate, .init(cert: "lb.pem", key: "lb.key"))
        XCTAssertFalse(a.sessionReuse)
        XCTAssertTrue(a.verify)
        XCTAssertNil(config.upstreamTLS(forServer: "b"), "tls: false is plain TCP")
        let c = try XCTUnwrap(config.upstreamTLS(forServer: "c"))
        XCTAssertNil(c.serverName, "null goes back to the server's host")
        XCTAssertFalse(c.verify)
        XCTAssertEqual(c.caFile, "ca.pem", "keys not given come from upstream_tls")
        XCTAssertEqual(config.upstreamTLS(forServer: "d"), a)
        XCTAssertEqual(config.upstreamTLS(forServer: "added-later"), a, "a server added at run time gets upstream_tls")
    }

    func testDisabledUpstreamTLSStillGivesItsSettingsToServersThatAskForTLS() throws {
        let config = try load(#"""
            {"upstream_tls": {"enabled": false, "ca_file": "ca.pem"},
             "servers": [{"id": "plain", "host": "10.0.0.1", "port": 80},
                         {"id": "secure", "host": "s.internal", "port": 443, "tls": true}]}
            """#)
        XCTAssertNil(config.upstreamTLS(forServer: "plain"))
        XCTAssertEqual(config.upstreamTLS(forServer: "secure")?.caFile, "ca.pem")
        XCTAssertNil(try load(#"{"servers": []}"#).upstreamTLS, "no upstream_tls: plain TCP")
    }

    func testBadUpstreamTLSNamesTheKeyAndTheProblem() {
        XCTAssertTrue(problems(#"{"upstream_tls": {"ca_file": 3}}"#).contains("upstream_tls.ca_file: expected a PEM file"))
        XCTAssertTrue(problems(#"{"upstream_tls": {"server_name": "a.test:443"}}"#)
            .contains("upstream_tls.server_name: expected a DNS name or IP address without a port"))
        XCTAssertTrue(problems(#"{"upstream_tls": {"min_version": "1.1"}}"#)
            .contains(#"upstream_tls.min_version: "1.1" is not one of 1.2, 1.3"#))
        XCTAssertTrue(problems(#"{"upstream_tls": {"client_certificate": {"cert": "a.pem"}}}"#)
            .contains("upstream_tls.client_certificate.key: missing"))
        XCTAssertTrue(problems(#"{"upstream_tls": {"verfy": false}}"#).contains("upstream_tls.verfy: unknown key (did you mean verify?)"))
        let server = #"{"servers": [{"id": "s", "host": "h", "port": 1, "tls": %@}]}"#
        XCTAssertTrue(problems(server.replacingOccurrences(of: "%@", with: #"{"enabled": true}"#))
            .contains("servers[0].tls.enabled: unknown key"))
        XCTAssertTrue(problems(server.replacingOccurrences(of: "%@", with: #""yes""#))
            .contains("servers[0].tls: expected true, false or an object"))
    }
}

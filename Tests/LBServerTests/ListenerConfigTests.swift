import XCTest

@testable import LBServer

/// `listeners`, their TLS settings and the TLS flags: what loads, and what is refused with the key named.
final class ListenerConfigTests: XCTestCase {
    private func load(_ json: String) throws -> LBConfig {
        try ConfigLoader.parse(bytes: Array(json.utf8), source: "test.json", requireServers: false)
    }

    private func problems(_ json: String) -> String {
        do {
            _ = try load(json)
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testListenersWithTLSLoadAndListenStaysTheShortForm() throws {
        let config = try load(#"""
            {"listeners": [
              {"address": "0.0.0.0:443", "tls": {"certificates": [{"cert": "a.pem", "key": "a.key"},
                                                                  {"cert": "b.pem", "key": "b.key"}],
                                                 "default_certificate": 1, "strict_sni": true,
                                                 "min_version": "1.3", "session_tickets": false}},
              {"address": "0.0.0.0:80"}]}
            """#)
        XCTAssertEqual(config.effectiveListeners.count, 2)
        let tls = try XCTUnwrap(config.effectiveListeners[0].tls)
        XCTAssertEqual(tls.certificates, [.init(cert: "a.pem", key: "a.key"), .init(cert: "b.pem", key: "b.key")])
        XCTAssertEqual(tls.defaultCertificate, 1)
        XCTAssertTrue(tls.strictSNI)
        XCTAssertEqual(tls.minVersion, .tls13)
        XCTAssertFalse(tls.sessionTickets)
        XCTAssertNil(config.effectiveListeners[1].tls)

        let short = try load(#"{"listen": "127.0.0.1:9000"}"#)
        XCTAssertEqual(short.effectiveListeners, [LBConfig.Listener(address: HostPort(host: "127.0.0.1", port: 9000))])
    }

    func testBadListenerConfigNamesTheKeyAndTheProblem() {
        XCTAssertTrue(problems(#"{"listen": "127.0.0.1:1", "listeners": [{"address": "127.0.0.1:2"}]}"#)
            .contains("listeners: give either listen or listeners, not both"))
        XCTAssertTrue(problems(#"{"listeners": []}"#).contains("listeners: expected a non-empty array"))
        XCTAssertTrue(problems(#"{"listeners": [{"tls": {}}]}"#).contains("listeners[0].address: missing"))
        XCTAssertTrue(
            problems(#"{"listeners": [{"address": "127.0.0.1:1"}, {"address": "127.0.0.1:1"}]}"#)
                .contains("listeners[1].address: 127.0.0.1:1 is also listeners[0]"))
        XCTAssertTrue(
            problems(#"{"listeners": [{"address": "127.0.0.1:1", "tls": {"certificates": []}}]}"#)
                .contains("listeners[0].tls.certificates: expected a non-empty array"))
        XCTAssertTrue(
            problems(#"{"listeners": [{"address": "127.0.0.1:1", "tls": {"certificates": [{"cert": "a"}]}}]}"#)
                .contains("listeners[0].tls.certificates[0].key: missing (required)"))
        XCTAssertTrue(
            problems(#"""
                {"listeners": [{"address": "127.0.0.1:1",
                                "tls": {"certificates": [{"cert": "a", "key": "b"}], "min_version": "1.1"}}]}
                """#).contains("listeners[0].tls.min_version"))
        XCTAssertTrue(
            problems(#"""
                {"listeners": [{"address": "127.0.0.1:1",
                                "tls": {"certificates": [{"cert": "a", "key": "b"}], "default_certificate": 1}}]}
                """#).contains("listeners[0].tls.default_certificate"))
        XCTAssertTrue(
            problems(#"{"admin": {"listen": "127.0.0.1:5"}, "listeners": [{"address": "127.0.0.1:5"}]}"#)
                .contains("admin.listen: 127.0.0.1:5 is the same address as listeners[0].address"))
    }

    func testTLSFlagsMakeTheListenAddressHTTPSAndNeedEachOther() throws {
        let base = LBConfig()
        let tls = try base.applying(CommandLineOverrides(listen: "127.0.0.1:9443", tlsCert: "c.pem", tlsKey: "k.pem"))
        XCTAssertEqual(tls.effectiveListeners, [LBConfig.Listener(
            address: HostPort(host: "127.0.0.1", port: 9443),
            tls: LBConfig.TLS(certificates: [.init(cert: "c.pem", key: "k.pem")]))])
        XCTAssertThrowsError(try base.applying(CommandLineOverrides(tlsCert: "c.pem"))) { error in
            XCTAssertTrue("\(error)".contains("--tls-cert \"c.pem\": needs --tls-key"), "\(error)")
        }
        XCTAssertThrowsError(try base.applying(CommandLineOverrides(tlsKey: "k.pem"))) { error in
            XCTAssertTrue("\(error)".contains("--tls-key \"k.pem\": needs --tls-cert"), "\(error)")
        }
    }

    /// A reload applies certificates but not a new set of listeners: that change is named in the warning.
    func testChangedListenersNeedARestart() throws {
        let old = try load(#"{"listeners": [{"address": "127.0.0.1:1"}]}"#)
        let moved = try load(#"{"listeners": [{"address": "127.0.0.1:2"}]}"#)
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: old, to: moved), ["listeners"])
        let plain = try load(#"{"listen": "127.0.0.1:1"}"#)
        XCTAssertEqual(
            ProxyServer.restartOnlyChanges(from: plain, to: try load(#"{"listen": "127.0.0.1:2"}"#)), ["listen"],
            "the one-listener form is named once, as written")
        func tls(_ cert: String) -> String {
            #"{"listeners": [{"address": "127.0.0.1:1", "tls": {"certificates": [{"cert": "\#(cert)", "key": "k"}]}}]}"#
        }
        let renewed = try load(tls("a"))
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: old, to: renewed), ["listeners"], "plain became TLS")
        let renewed2 = try load(tls("c"))
        XCTAssertEqual(ProxyServer.restartOnlyChanges(from: renewed, to: renewed2), [], "new files are reloaded")
    }
}

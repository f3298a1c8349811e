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

    /// `listeners[0]` with one certificate and `client_certificates` set to `client` (JSON).
    private func clientCertificates(_ client: String) -> String {
        #"{"listeners": [{"address": "127.0.0.1:1", "tls": {"certificates": [{"cert": "c", "key": "k"}], "#
            + #""client_certificates": \#(client)}}]}"#
    }

    func testClientCertificatesLoadWithTheirDefaults() throws {
        func loaded(_ client: String) throws -> LBConfig.ClientCertificates? {
            try XCTUnwrap(load(clientCertificates(client)).effectiveListeners[0].tls).clientCertificates
        }
        XCTAssertEqual(
            try loaded(#"{"ca_file": "clients.pem"}"#),
            LBConfig.ClientCertificates(caFile: "clients.pem", mode: .required, subjectHeader: nil, verifyDepth: 2),
            "required by default, and no header unless one is named")
        XCTAssertEqual(
            try loaded(
                #"{"ca_file": "c.pem", "mode": "optional", "subject_header": "X-SSL-Client-DN", "verify_depth": 0}"#),
            LBConfig.ClientCertificates(
                caFile: "c.pem", mode: .optional, subjectHeader: "X-SSL-Client-DN", verifyDepth: 0))
        let plain =
            #"{"listeners": [{"address": "127.0.0.1:1", "tls": {"certificates": [{"cert": "c", "key": "k"}]}}]}"#
        XCTAssertNil(try load(plain).effectiveListeners[0].tls?.clientCertificates)
    }

    func testBadClientCertificateSettingsNameTheKeyAndTheProblem() {
        let at = "listeners[0].tls.client_certificates"
        let cases: [(client: String, says: String)] = [
            (#"{}"#, "\(at).ca_file: missing (required): the PEM file of the CAs that issue client certificates"),
            (#"{"ca_file": ""}"#, "\(at).ca_file: must not be empty"),
            (#"{"ca_file": 3}"#, "\(at).ca_file: expected a string"),
            (#"{"ca_file": "c", "mode": "request"}"#, #"\#(at).mode: "request" is not one of required, optional"#),
            (#"{"ca_file": "c", "verify_depth": 11}"#, "\(at).verify_depth: 11 is out of range 0-10"),
            (#"{"ca_file": "c", "verify_depth": -1}"#, "\(at).verify_depth: -1 is out of range 0-10"),
            (#"{"ca_file": "c", "subject_header": ""}"#, "\(at).subject_header: must not be empty"),
            (#"{"ca_file": "c", "subject_header": "X Client"}"#, #"subject_header: "X Client" is not an HTTP field"#),
            (#"{"ca_file": "c", "subject_header": "Host"}"#, #"subject_header: "Host" is a field lb handles itself"#),
            (#"{"ca_file": "c", "subject_header": "content-length"}"#, "is a field lb handles itself"),
            (#"{"ca_file": "c", "subject_header": "Transfer-Encoding"}"#, "is a field lb handles itself"),
            (#"{"ca_file": "c", "subject_header": "Connection"}"#, "is a field lb handles itself"),
            (#"{"ca_file": "c", "subject_header": "X-Forwarded-For"}"#, "is a field lb handles itself"),
            (#"{"ca_file": "c", "subject_header": null}"#, "\(at).subject_header: expected a string"),
            (#"{"ca_file": "c", "mod": "optional"}"#, "\(at).mod: unknown key (did you mean mode?)"),
            (#""yes""#, "\(at): expected an object"),
        ]
        for c in cases {
            let text = problems(clientCertificates(c.client))
            XCTAssertTrue(text.contains(c.says), "\(c.client): \(text)")
        }
    }

    /// The flags swap the certificate; they must not open a listener that requires client certificates.
    func testTLSFlagsKeepTheFilesClientCertificates() throws {
        let file = try load(
            #"{"listeners": [{"address": "127.0.0.1:9443", "tls": {"certificates": [{"cert": "a", "key": "b"}], "#
                + #""strict_sni": true, "#
                + #""client_certificates": {"ca_file": "ca.pem", "subject_header": "X-Client"}}}]}"#)
        let flagged = try file.applying(CommandLineOverrides(tlsCert: "c.pem", tlsKey: "k.pem"))
        let tls = try XCTUnwrap(flagged.effectiveListeners[0].tls)
        XCTAssertEqual(tls.certificates, [.init(cert: "c.pem", key: "k.pem")])
        XCTAssertEqual(tls.clientCertificates, LBConfig.ClientCertificates(caFile: "ca.pem", subjectHeader: "X-Client"))
        XCTAssertFalse(tls.strictSNI, "the other TLS keys take their defaults, as documented")
        let moved = try file.applying(CommandLineOverrides(listen: "127.0.0.1:9444", tlsCert: "c.pem", tlsKey: "k.pem"))
        XCTAssertNil(moved.effectiveListeners[0].tls?.clientCertificates, "--listen names another listener")
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

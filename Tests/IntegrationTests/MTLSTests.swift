import Foundation
import XCTest

/// Client certificates (mutual TLS) end to end: one lb-server with three HTTPS listeners on loopback, in order
/// `required` and `optional` (both trusting the test CA and forwarding the subject as `X-Client-Subject`) and one
/// without client certificates; real clients (`curl --cert`, `openssl s_client`); the demo backend's `/headers`
/// echoes the request head it received, so each test sees exactly what reached the backend.
final class MTLSTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates()
    var certs: TestCertificates!
    var backend: DemoBackend!

    static let alice = "X-Client-Subject: CN=alice,O=Example Org\r\n"

    override func setUpWithError() throws {
        try super.setUpWithError()
        for tool in ["openssl", "curl"] where ManagedProcess.resolveExecutable(tool) == nil {
            throw XCTSkip("\(tool) is not installed; the mutual-TLS tests need it")
        }
        certs = try Self.sharedCertificates.get()
        backend = try LBBinaries.startDemoBackend(name: "b1")
    }

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    // MARK: required

    func testRequiredModeForwardsTheVerifiedSubjectAndRefusesEveryOtherClient() throws {
        let lb = try startServer()
        let port = try ports(lb).required
        let admin = AdminClient(port: lb.adminPort)
        let before = try refusals(admin)

        let served = curl(port, "/headers", cert: "client", ["-H", "X-Client-Subject: CN=forged"])
        XCTAssertEqual(served.status, 0, served.stderr)
        XCTAssertTrue(served.stdout.hasPrefix("GET /headers HTTP/1.1\r\n"), served.stdout)
        XCTAssertEqual(occurrences(of: "x-client-subject", in: served.stdout), 1, served.stdout)
        XCTAssertTrue(served.stdout.contains("\r\n" + Self.alice), served.stdout)
        XCTAssertFalse(served.stdout.contains("forged"), served.stdout)

        // Every request of a kept-alive connection carries it (the line is built once per connection).
        let twice = curl(port, "/headers", cert: "client", paths: ["/headers", "/headers"])
        XCTAssertEqual(occurrences(of: Self.alice, in: twice.stdout), 2, twice.stdout + twice.stderr)

        let anonymous = curl(port, "/headers", cert: nil)
        XCTAssertNotEqual(anonymous.status, 0, "no certificate must be refused: \(anonymous.stdout)")
        XCTAssertEqual(anonymous.stdout, "", "nothing may reach the backend")
        XCTAssertTrue(anonymous.stderr.contains("certificate required"), anonymous.stderr)

        let intruder = curl(port, "/headers", cert: "intruder")
        XCTAssertNotEqual(intruder.status, 0, "another CA's certificate must be refused: \(intruder.stdout)")
        XCTAssertEqual(intruder.stdout, "")
        XCTAssertTrue(intruder.stderr.contains("unknown ca"), intruder.stderr)

        // TLS 1.2 refuses within the handshake itself.
        let tls12 = curl(port, "/headers", cert: nil, ["--tls-max", "1.2"])
        XCTAssertEqual(tls12.status, 35, tls12.stderr)

        try eventually(timeout: 5, "refusals counted by reason") {
            let now = try refusals(admin)
            return now.missing == before.missing + 2 && now.untrusted == before.untrusted + 1
                && now.failures == before.failures + 3
        }
        let metrics = try admin.call("GET", "/metrics").response.bodyString
        let family = "lb_tls_client_certificates_refused_total"
        XCTAssertTrue(metrics.contains("\n\(family){reason=\"untrusted\"} \(before.untrusted + 1)\n"), metrics)
        XCTAssertTrue(metrics.contains("\n\(family){reason=\"missing\"} \(before.missing + 2)\n"), metrics)
    }

    // MARK: optional

    /// A client without a certificate is served, and whatever it claims in the subject field never reaches the
    /// backend; one with a certificate gets it forwarded; one with a certificate that does not verify is refused
    /// (as nginx's `ssl_verify_client optional`), not served as anonymous.
    func testOptionalModeServesAnonymousClientsWithoutTheirForgedSubject() throws {
        let lb = try startServer()
        let port = try ports(lb).optional
        let admin = AdminClient(port: lb.adminPort)
        let before = try refusals(admin)

        let spoof = curl(
            port, "/headers", cert: nil,
            ["-H", "X-Client-Subject: CN=admin", "-H", "x-client-subject: CN=root", "-H", "X-CLIENT-SUBJECT: x"])
        XCTAssertEqual(spoof.status, 0, spoof.stderr)
        XCTAssertTrue(spoof.stdout.hasPrefix("GET /headers HTTP/1.1\r\n"), spoof.stdout)
        XCTAssertEqual(occurrences(of: "x-client-subject", in: spoof.stdout), 0, spoof.stdout)

        let verified = curl(port, "/headers", cert: "client", ["-H", "X-Client-Subject: CN=admin"])
        XCTAssertEqual(verified.status, 0, verified.stderr)
        XCTAssertEqual(occurrences(of: "x-client-subject", in: verified.stdout), 1, verified.stdout)
        XCTAssertTrue(verified.stdout.contains("\r\n" + Self.alice), verified.stdout)

        let intruder = curl(port, "/headers", cert: "intruder")
        XCTAssertNotEqual(intruder.status, 0, "a certificate that fails must be refused: \(intruder.stdout)")
        XCTAssertEqual(intruder.stdout, "")
        try eventually(timeout: 5, "the untrusted certificate is counted") {
            let now = try refusals(admin)
            return now.untrusted == before.untrusted + 1 && now.missing == before.missing
        }
    }

    // MARK: absent

    /// Without `client_certificates` the listener asks for nothing and the proxy takes no position on the field:
    /// a client's own `X-Client-Subject` passes as sent.
    func testAListenerWithoutClientCertificatesNeitherAsksForOneNorTouchesTheField() throws {
        let lb = try startServer()
        let port = try ports(lb).plain
        let passed = curl(port, "/headers", cert: "client", ["-H", "X-Client-Subject: CN=whatever"])
        XCTAssertEqual(passed.status, 0, passed.stderr)
        XCTAssertTrue(passed.stdout.contains("\r\nX-Client-Subject: CN=whatever\r\n"), passed.stdout)
        XCTAssertEqual(occurrences(of: "x-client-subject", in: passed.stdout), 1, passed.stdout)

        let s = sClient(port: port, ["-tls1_3"])
        XCTAssertTrue(s.output.contains("No client certificate CA names sent"), s.output)
        let asked = sClient(port: try ports(lb).optional, ["-tls1_3"])
        XCTAssertTrue(asked.output.contains("Acceptable client certificate CA names\nCN = lb-test-ca\n"), asked.output)
    }

    // MARK: resumption

    /// A client that resumes its session (a TLS 1.3 ticket, a TLS 1.2 ticket, a TLS 1.2 session id) without
    /// presenting its certificate again is still the verified subject: OpenSSL keeps the certificate in the
    /// session, and the backend gets the field on the resumed connection.
    func testAResumedSessionStillForwardsTheSubject() throws {
        let lb = try startServer(sessionTickets: true)
        let noTickets = try startServer(sessionTickets: false)
        let cases: [(what: String, port: Int, flags: [String])] = [
            ("TLS 1.3 ticket", try ports(lb).required, ["-tls1_3"]),
            ("TLS 1.2 ticket", try ports(lb).required, ["-tls1_2"]),
            ("TLS 1.2 session id", try ports(noTickets).required, ["-tls1_2"]),
        ]
        let request = "GET /headers HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        for c in cases {
            let session = certs.directory + "/mtls-session-\(UUID().uuidString).pem"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: session) }
            let certificate = ["-cert", certs.cert("client"), "-key", certs.key("client")]
            let first = sClient(
                port: c.port, c.flags + certificate + ["-sess_out", session, "-ign_eof"], input: request)
            XCTAssertTrue(first.output.contains("New, TLSv1."), "\(c.what): \(first.output)")
            XCTAssertTrue(first.output.contains("\r\n" + Self.alice), "\(c.what): \(first.output)")

            // No -cert: only the session speaks for the client.
            let again = sClient(port: c.port, c.flags + ["-sess_in", session, "-ign_eof"], input: request)
            XCTAssertTrue(again.output.contains("Reused, TLSv1."), "\(c.what): \(again.output)")
            XCTAssertTrue(again.output.contains("\r\n" + Self.alice), "\(c.what): \(again.output)")
            XCTAssertEqual(occurrences(of: "x-client-subject", in: again.output), 1, "\(c.what): \(again.output)")
        }
    }

    // MARK: reload

    /// A reload (SIGHUP) applies `client_certificates` with the rest of the listener's TLS settings: the CA, the
    /// mode and the subject field change together for the next connection.
    func testAReloadTurnsClientCertificatesOnWithTheirField() throws {
        let listener: ([String: Any]?) -> [String: Any] = { client in
            ["servers": [["host": "127.0.0.1", "port": self.backend.port]],
             "listeners": [["address": "127.0.0.1:0", "tls": self.tls(client: client)]]]
        }
        let config = try writeConfigFile(listener(nil))
        let lb = try LBBinaries.startServer(backends: [], configFile: config, listen: nil, proxyKind: .proxyTLS)
        let before = curl(lb.proxyPort, "/headers", cert: nil, ["-H", "X-Client-Subject: CN=forged"])
        XCTAssertTrue(before.stdout.contains("\r\nX-Client-Subject: CN=forged\r\n"), before.stdout + before.stderr)

        let reloaded = try Data(contentsOf: URL(fileURLWithPath: try writeConfigFile(listener(
            ["ca_file": certs.caCert, "mode": "required", "subject_header": "X-Client-Subject"]))))
        try reloaded.write(to: URL(fileURLWithPath: config))
        lb.process.signal(SIGHUP)
        try eventually(timeout: 10, "a client without a certificate is refused after the reload") {
            curl(lb.proxyPort, "/headers", cert: nil).status != 0
        }
        let after = curl(lb.proxyPort, "/headers", cert: "client", ["-H", "X-Client-Subject: CN=forged"])
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertEqual(occurrences(of: "x-client-subject", in: after.stdout), 1, after.stdout)
        XCTAssertTrue(after.stdout.contains("\r\n" + Self.alice), after.stdout)
    }

    // MARK: bad CA files

    func testABadClientCAFileStopsTheServerAndCheckConfigNamesIt() throws {
        let missing = certs.directory + "/no-such-ca.pem"
        let cases: [(caFile: String, mustSay: [String])] = [
            (missing, ["listeners[0].tls", "client CA file \(missing)", "No such file"]),
            (certs.cert("client"), ["listeners[0].tls", certs.cert("client"), "is not a CA certificate"]),
            (certs.key("client"), ["listeners[0].tls", certs.key("client"), "no PEM certificate"]),
        ]
        for c in cases {
            let config = try writeConfigFile([
                "servers": [["host": "127.0.0.1", "port": backend.port]],
                "admin": ["listen": "127.0.0.1:0"],
                "listeners": [[
                    "address": "127.0.0.1:0",
                    "tls": tls(client: ["ca_file": c.caFile, "subject_header": "X-Client-Subject"]),
                ]],
            ])
            let check = run(try LBBinaries.path(of: .server), ["--config", config, "--check-config"], timeout: 15)
            XCTAssertEqual(check.status, 2, "\(c.caFile): \(check.stdout)\(check.stderr)")
            for text in c.mustSay {
                XCTAssertTrue(check.stderr.contains(text), "check \(c.caFile): no \"\(text)\" in \(check.stderr)")
            }
            let start = run(try LBBinaries.path(of: .server), ["--config", config], timeout: 15)
            XCTAssertEqual(start.status, 1, "\(c.caFile): \(start.stdout)\(start.stderr)")
            XCTAssertFalse(start.stdout.contains("listening on"), start.stdout)
            XCTAssertTrue(start.stderr.contains(c.caFile), start.stderr)
        }
    }
}

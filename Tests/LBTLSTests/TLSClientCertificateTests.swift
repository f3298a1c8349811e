import COpenSSL
import LBTLS
import XCTest

/// Client certificates (mutual TLS): what is accepted, what is refused and why, and what the session reports.
/// The server trusts `ca.crt` (the root); `client-other` comes from a root it does not trust.
final class TLSClientCertificateTests: TLSTestCase {
    private func mtls(
        _ mode: TLSClientCertificates.Mode, depth: Int = 2, sessionTickets: Bool = true, sessionCacheSize: Int = 1_000
    ) throws -> TLSServerContext {
        try context(
            config(
                sessionTickets: sessionTickets, sessionCacheSize: sessionCacheSize,
                clientCertificates: TLSClientCertificates(caFile: certificates.caFile, mode: mode, verifyDepth: depth)))
    }

    private func options(
        _ client: String?, serverName: String? = nil, maxVersion: Int32 = 0, session: OpaquePointer? = nil
    ) -> TestClient.Options {
        TestClient.Options(
            serverName: serverName, maxVersion: maxVersion, session: session,
            certificate: client.map(certificates.pair))
    }

    // MARK: accepted

    func testRequiredModeAcceptsACertificateFromTheCAAndReportsItsSubject() throws {
        for version in [TLS1_3_VERSION, TLS1_2_VERSION] {
            let connection = try connect(mtls(.required), options("client", maxVersion: version))
            connection.handshake()
            XCTAssertTrue(connection.server.hasVerifiedClientCertificate, "version \(version)")
            XCTAssertEqual(connection.server.clientCertificateSubject, "CN=alice,O=Example Org", "version \(version)")
        }
    }

    func testTheCertificateRequestNamesTheTrustedCAs() throws {
        let connection = try connect(mtls(.optional), options(nil))
        connection.handshake()
        XCTAssertEqual(connection.client.requestedCANames, ["CN=LB Test Root CA"])
    }

    func testOptionalModeServesAClientWithoutACertificateAndReportsNone() throws {
        for version in [TLS1_3_VERSION, TLS1_2_VERSION] {
            let connection = try connect(mtls(.optional), options(nil, maxVersion: version))
            connection.handshake()
            XCTAssertFalse(connection.server.hasVerifiedClientCertificate)
            XCTAssertNil(connection.server.clientCertificateSubject)
        }
        let withCertificate = try connect(mtls(.optional), options("client"))
        withCertificate.handshake()
        XCTAssertEqual(withCertificate.server.clientCertificateSubject, "CN=alice,O=Example Org")
    }

    func testWithoutClientCertificatesNoneIsRequestedEvenFromAClientThatHasOne() throws {
        let connection = try connect(context(), options("client"))
        connection.handshake()
        XCTAssertEqual(connection.client.requestedCANames, [])
        XCTAssertFalse(connection.server.hasVerifiedClientCertificate)
        XCTAssertNil(connection.server.clientCertificateSubject)
    }

    /// Every SSL_CTX of the context verifies: SNI moving the session to another certificate keeps the request,
    /// the verification and the refusal.
    func testACertificateChosenBySNIStillRequestsAndVerifiesClientCertificates() throws {
        for name in ["a.test", "x.b.test", "chain.test"] {
            let good = try connect(mtls(.required), options("client", serverName: name))
            good.handshake()
            XCTAssertEqual(good.client.peerCommonName, name == "x.b.test" ? "*.b.test" : name)
            XCTAssertEqual(good.server.clientCertificateSubject, "CN=alice,O=Example Org", name)
            XCTAssertEqual(good.client.requestedCANames, ["CN=LB Test Root CA"], name)

            let missing = try connect(mtls(.required), options(nil, serverName: name))
            XCTAssertEqual(missing.refusal()?.clientCertificateRefusal, .missing, name)
            let untrusted = try connect(mtls(.optional), options("client-other", serverName: name))
            XCTAssertEqual(untrusted.refusal()?.clientCertificateRefusal, .untrusted, name)
        }
    }

    // MARK: refused

    func testRequiredModeRefusesAClientWithoutACertificate() throws {
        let tls13 = try connect(mtls(.required), options(nil))
        let error = try XCTUnwrap(tls13.refusal())
        XCTAssertEqual(error.clientCertificateRefusal, .missing, error.description)
        XCTAssertTrue(error.description.contains("no certificate"), error.description)
        XCTAssertTrue(tls13.client.failure?.contains("certificate required") ?? false, tls13.client.failure ?? "")

        let tls12 = try connect(mtls(.required), options(nil, maxVersion: TLS1_2_VERSION))
        XCTAssertEqual(tls12.refusal()?.clientCertificateRefusal, .missing)
    }

    /// As nginx's `ssl_verify_client optional`: optional means "may present none", not "may present anything".
    func testBothModesRefuseACertificateThatDoesNotVerify() throws {
        let cases: [(client: String, refusal: TLSClientCertificateRefusal, alert: String)] = [
            ("client-other", .untrusted, "unknown ca"),
            ("client-expired", .expired, "certificate expired"),
            ("a", .invalid, "unsupported certificate"),  // extendedKeyUsage serverAuth only
        ]
        for mode in [TLSClientCertificates.Mode.required, .optional] {
            for version in [TLS1_3_VERSION, TLS1_2_VERSION] {
                for c in cases {
                    let what = "\(mode) \(version) \(c.client)"
                    let connection = try connect(mtls(mode), options(c.client, maxVersion: version))
                    let error = try XCTUnwrap(connection.refusal(), what)
                    XCTAssertEqual(error.clientCertificateRefusal, c.refusal, "\(what): \(error)")
                    XCTAssertTrue(error.description.contains("client certificate"), "\(what): \(error)")
                    let alert = connection.client.failure ?? "-"
                    XCTAssertTrue(alert.contains(c.alert), "\(what): \(alert)")
                    XCTAssertNil(connection.server.clientCertificateSubject, what)
                }
            }
        }
    }

    func testOtherHandshakeFailuresAreNotClientCertificateRefusals() throws {
        let options = TestClient.Options(alpn: ["h2"], certificate: certificates.pair("client"))
        let connection = try connect(mtls(.required), options)
        XCTAssertNil(connection.refusal()?.clientCertificateRefusal)
    }

    /// `client-chained` reaches the root through one intermediate, which the client sends.
    func testVerifyDepthCountsTheIntermediatesBetweenTheCertificateAndTheCA() throws {
        let accepted = try connect(mtls(.required, depth: 1), options("client-chained"))
        accepted.handshake()
        XCTAssertEqual(accepted.server.clientCertificateSubject, "CN=bob")
        let refused = try connect(mtls(.required, depth: 0), options("client-chained"))
        XCTAssertEqual(refused.refusal()?.clientCertificateRefusal, .untrusted)
        let direct = try connect(mtls(.required, depth: 0), options("client"))
        direct.handshake()
    }

    // MARK: the subject

    func testTheSubjectIsASCIIWithRFC2253EscapesAndUTF8InHex() throws {
        let connection = try connect(mtls(.required), options("client-utf8"))
        connection.handshake()
        let subject = try XCTUnwrap(connection.server.clientCertificateSubject)
        XCTAssertEqual(subject, #"CN=Zo\C3\AB \"Z\" \<z\>,O=a\,b"#)
        XCTAssertTrue(subject.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, subject)
    }

    // MARK: resumption

    /// A resumed session carries the certificate of the handshake that made it, so the subject is there even
    /// when the returning client has no certificate configured at all.
    func testAResumedSessionStillCarriesTheVerifiedSubject() throws {
        let cases: [(what: String, tickets: Bool, version: Int32)] = [
            ("TLS 1.3 ticket", true, 0), ("TLS 1.2 ticket", true, TLS1_2_VERSION),
            ("TLS 1.3 cached session", false, 0), ("TLS 1.2 session id", false, TLS1_2_VERSION),
        ]
        for c in cases {
            let context = try mtls(.required, sessionTickets: c.tickets)
            let first = try connect(context, options("client", serverName: "a.test", maxVersion: c.version))
            first.handshake()
            let session = try XCTUnwrap(first.client.session(), c.what)
            defer { SSL_SESSION_free(session) }
            let second = try connect(
                context, options(nil, serverName: "a.test", maxVersion: c.version, session: session))
            second.handshake()
            XCTAssertTrue(second.server.isResumed, c.what)
            XCTAssertEqual(second.server.clientCertificateSubject, "CN=alice,O=Example Org", c.what)
        }
    }

    /// A session made without a certificate (optional mode) resumes without one.
    func testAResumedSessionWithoutACertificateStaysWithout() throws {
        let context = try mtls(.optional)
        let first = try connect(context, options(nil))
        first.handshake()
        let session = try XCTUnwrap(first.client.session())
        defer { SSL_SESSION_free(session) }
        let second = try connect(context, options("client", session: session))
        second.handshake()
        XCTAssertTrue(second.server.isResumed)
        XCTAssertNil(second.server.clientCertificateSubject)
    }

    // MARK: configuration

    func testBadClientCAFilesAreRefusedNamingTheFile() throws {
        func loadError(_ caFile: String, depth: Int = 2) -> TLSConfigError? {
            do {
                _ = try mtlsContext(caFile: caFile, depth: depth)
                XCTFail("loading \(caFile) should have failed")
                return nil
            } catch {
                return error
            }
        }
        let missing = certificates.path("no-such-ca.crt")
        let error = try XCTUnwrap(loadError(missing))
        XCTAssertEqual(error.problem, .unreadableFile)
        XCTAssertEqual(error.file, missing)
        XCTAssertTrue(error.description.contains("client CA file \(missing)"), error.description)
        XCTAssertTrue(error.description.contains("No such file"), error.description)

        let leaf = certificates.path("a.crt")
        let notCA = try XCTUnwrap(loadError(leaf))
        XCTAssertEqual(notCA.problem, .notACertificateAuthority)
        XCTAssertTrue(notCA.description.contains(leaf) && notCA.description.contains("CN=a.test"), notCA.description)

        let keyOnly = certificates.path("a.key")
        let noCertificate = try XCTUnwrap(loadError(keyOnly))
        XCTAssertEqual(noCertificate.problem, .noCertificate)
        XCTAssertTrue(noCertificate.description.contains("client CA file \(keyOnly)"), noCertificate.description)

        let intermediateOnly = certificates.path("intermediate.crt")
        let noRoot = try XCTUnwrap(loadError(intermediateOnly))
        XCTAssertEqual(noRoot.problem, .noRootCertificate)
        XCTAssertTrue(noRoot.description.contains("no root (self-signed)"), noRoot.description)

        let tooDeep = try XCTUnwrap(loadError(certificates.caFile, depth: 11))
        XCTAssertEqual(tooDeep.problem, .invalidSetting)
        XCTAssertTrue(tooDeep.description.contains("verify depth 11"), tooDeep.description)
    }

    /// An issuing intermediate in the file (with its root) counts like one the client sends.
    func testAnIntermediateInTheFileCompletesTheChain() throws {
        let both = certificates.path("intermediate-and-root.crt")
        let text = try String(contentsOfFile: certificates.path("intermediate.crt"), encoding: .utf8)
            + String(contentsOfFile: certificates.caFile, encoding: .utf8)
        try text.write(toFile: both, atomically: true, encoding: .utf8)
        let leafOnly = certificates.path("client-chained-leaf.crt")
        let chain = try String(contentsOfFile: certificates.path("client-chained.crt"), encoding: .utf8)
        let end = try XCTUnwrap(chain.range(of: "-----END CERTIFICATE-----\n"))
        try String(chain[..<end.upperBound]).write(toFile: leafOnly, atomically: true, encoding: .utf8)
        let client = TLSCertificateFiles(
            certificateChain: leafOnly, privateKey: certificates.path("client-chained.key"))

        let connection = try connect(try mtlsContext(caFile: both), TestClient.Options(certificate: client))
        connection.handshake()
        XCTAssertEqual(connection.server.clientCertificateSubject, "CN=bob")
        let rootOnly = try connect(
            try mtlsContext(caFile: certificates.caFile), TestClient.Options(certificate: client))
        XCTAssertEqual(rootOnly.refusal()?.clientCertificateRefusal, .untrusted, "the client did not send it")
    }

    func testAFileOfSeveralCAsTrustsEachOfThem() throws {
        let both = certificates.path("both-cas.crt")
        let text = try String(contentsOfFile: certificates.caFile, encoding: .utf8)
            + String(contentsOfFile: certificates.path("other-ca.crt"), encoding: .utf8)
        try text.write(toFile: both, atomically: true, encoding: .utf8)
        let context = try mtlsContext(caFile: both)
        for client in ["client", "client-other"] {
            let connection = try connect(context, options(client))
            connection.handshake()
            XCTAssertTrue(connection.server.hasVerifiedClientCertificate, client)
        }
        let connection = try connect(context, options(nil))
        connection.refusal()
        XCTAssertEqual(connection.client.requestedCANames, ["CN=LB Test Root CA", "CN=LB Other CA"])
    }

    private func mtlsContext(caFile: String, depth: Int = 2) throws(TLSConfigError) -> TLSServerContext {
        try TLSServerContext(
            config: TLSServerConfig(
                certificates: [certificates.pair("a")],
                clientCertificates: TLSClientCertificates(caFile: caFile, mode: .required, verifyDepth: depth)))
    }
}

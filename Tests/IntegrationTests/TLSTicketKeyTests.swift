import Foundation
import XCTest

/// Session resumption end to end with `openssl s_client -sess_out/-sess_in`: two lb processes reading one
/// `ticket_key_file` resume each other's sessions, through a rotation; without a key file a certificate reload
/// keeps sessions resumable; a session resumes only under the server name it was made for.
final class TLSTicketKeyTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates()
    private var certs: TestCertificates!
    private var backend: DemoBackend!

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard ManagedProcess.resolveExecutable("openssl") != nil else {
            throw XCTSkip("openssl is not installed; the ticket key tests need it")
        }
        certs = try Self.sharedCertificates.get()
        backend = try LBBinaries.startDemoBackend(name: "tk")
    }

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    func testTwoInstancesSharingAKeyFileResumeEachOthersSessionsThroughARotation() throws {
        let keys = certs.directory + "/ticket-keys"
        try writeKeys([1, 2, 3], to: keys)
        let one = try startServer(ticketKeyFile: keys)
        let two = try startServer(ticketKeyFile: keys)
        for flag in ["-tls1_2", "-tls1_3"] {
            let session = certs.directory + "/shared\(flag).pem"
            XCTAssertEqual(handshake(one, flag, out: session), "New")
            XCTAssertEqual(handshake(two, flag, in: session), "Reused", "\(flag): a session of one resumes on two")
        }

        // Rotate on two only: append key 4, drop key 1. Its tickets are now sealed with key 3, which one has too.
        let session = certs.directory + "/rotated.pem"
        try writeKeys([2, 3, 4], to: keys + ".new")
        try FileManager.default.removeItem(atPath: keys)
        try FileManager.default.moveItem(atPath: keys + ".new", toPath: keys)
        two.process.signal(SIGHUP)
        try eventually(timeout: 10, "two reloaded") { two.process.log.contains("TLS certificates reloaded") }
        XCTAssertEqual(handshake(two, "-tls1_3", out: session), "New")
        XCTAssertEqual(handshake(one, "-tls1_3", in: session), "Reused", "one opens two's ticket (key 3)")

        // A key file that breaks the rules keeps the running keys: the reload is refused and names the line.
        try "\(key(5))\nnot-a-key\n\(key(6))\n".write(toFile: keys, atomically: true, encoding: .utf8)
        let admin = AdminClient(port: two.adminPort)
        let answer = try admin.call("POST", "/manage/certificates/reload")
        XCTAssertEqual(answer.status, 422, answer.response.bodyString)
        XCTAssertTrue(answer.response.bodyString.contains("line 2"), answer.response.bodyString)
        XCTAssertEqual(handshake(two, "-tls1_3", in: session), "Reused", "the running keys stayed")
    }

    func testWithoutAKeyFileACertificateReloadKeepsSessionsResumable() throws {
        let lb = try startServer(ticketKeyFile: nil)
        let session = certs.directory + "/process-keys.pem"
        XCTAssertEqual(handshake(lb, "-tls1_3", out: session), "New")
        let answer = try AdminClient(port: lb.adminPort).call("POST", "/manage/certificates/reload")
        XCTAssertEqual(answer.status, 200, answer.response.bodyString)
        XCTAssertEqual(handshake(lb, "-tls1_3", in: session), "Reused")
        // Another process has keys of its own.
        let other = try startServer(ticketKeyFile: nil)
        XCTAssertEqual(handshake(other, "-tls1_3", in: session), "New")
    }

    /// RFC 6066 section 3: a session is not resumed under another server name (OpenSSL 3.0 alone resumes a TLS 1.2
    /// one), so a client never gets a session, and a certificate, meant for another name.
    func testASessionResumesOnlyUnderTheServerNameItWasMadeFor() throws {
        let lb = try startServer(ticketKeyFile: nil, certificates: ["a", "wild"])
        for flag in ["-tls1_2", "-tls1_3"] {
            let session = certs.directory + "/sni\(flag).pem"
            XCTAssertEqual(handshake(lb, flag, out: session, serverName: "a.test"), "New")
            XCTAssertEqual(handshake(lb, flag, in: session, serverName: "A.TEST"), "Reused", "\(flag): names ignore case")
            XCTAssertEqual(handshake(lb, flag, in: session, serverName: "x.b.test"), "New", "\(flag): another name")
        }
    }

    func testCheckConfigNamesABadKeyFile() throws {
        let keys = certs.directory + "/two-keys"
        try writeKeys([1, 2], to: keys)
        let config = try writeConfig(ticketKeyFile: keys)
        let r = ManagedProcess.run(try LBBinaries.path(of: .server), ["--config", config, "--check-config"], timeout: 30)
        XCTAssertEqual(r.status, 2)
        let text = String(decoding: r.stdout, as: UTF8.self) + r.stderr
        XCTAssertTrue(text.contains(keys) && text.contains("holds 2 keys; it needs at least 3"), text)
    }

    // MARK: helpers

    private func key(_ seed: UInt8) -> String { Data(repeating: seed, count: 80).base64EncodedString() }

    private func writeKeys(_ seeds: [UInt8], to path: String) throws {
        try (seeds.map(key).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    private func writeConfig(ticketKeyFile: String?, certificates: [String] = ["a"]) throws -> String {
        var tls: [String: Any] = ["certificates": certificates.map { ["cert": certs.cert($0), "key": certs.key($0)] }]
        if let ticketKeyFile { tls["ticket_key_file"] = ticketKeyFile }
        return try writeConfigFile([
            "listeners": [["address": "127.0.0.1:0", "tls": tls]], "servers": [["host": "127.0.0.1", "port": backend.port]],
            "health_check": ["enabled": false],
        ])
    }

    private func startServer(ticketKeyFile: String?, certificates: [String] = ["a"]) throws -> LBServerProcess {
        try LBBinaries.startServer(
            backends: [], configFile: try writeConfig(ticketKeyFile: ticketKeyFile, certificates: certificates),
            listen: nil, proxyKind: .proxyTLS)
    }

    /// One `openssl s_client` connection with a request (so a TLS 1.3 ticket has arrived before the session is
    /// written): "New" or "Reused", from its summary line.
    private func handshake(
        _ lb: LBServerProcess, _ flag: String, out: String? = nil, in: String? = nil, serverName: String = "a.test"
    ) -> String {
        certs.ticketHandshake(port: lb.proxyPort, flag, out: out, in: `in`, serverName: serverName)
    }
}

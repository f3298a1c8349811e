import Foundation
import XCTest

/// A throw-away PKI for the HTTPS tests, made with the `openssl` command in a fresh temporary directory: an EC P-256
/// CA and leaf certificates it signed, every file PEM and named by absolute path.
///
/// Leaves (`cert(_:)` / `key(_:)` take the short name):
/// - `a`: DNS `a.test`, valid for 30 days
/// - `wild`: DNS `*.b.test`, valid for 30 days
/// - `expired`: DNS `expired.test`, valid only in January 2020
/// - `client`: a client certificate (extendedKeyUsage clientAuth), subject `O=Example Org, CN=alice`
/// - `intruder`: a client certificate for `CN=mallory` from `otherCACert`, a CA no listener trusts
///
/// Making one costs a dozen `openssl` runs (well under a second), so a test class makes it once and removes it in its
/// class tear-down. `issueLeaf` adds more leaves (or replaces one) signed by the same CA.
struct TestCertificates: Sendable {
    /// The directory holding every file.
    let directory: String

    var caCert: String { directory + "/ca.pem" }
    var otherCACert: String { directory + "/other-ca.pem" }
    func cert(_ name: String) -> String { "\(directory)/\(name).pem" }
    func key(_ name: String) -> String { "\(directory)/\(name).key" }

    /// An `openssl` run that failed while making the certificates: the command and what it printed.
    struct SetupError: Error, CustomStringConvertible {
        let command: String
        let output: String
        var description: String { "certificate setup failed: openssl \(command)\n\(output)" }
    }

    static func make() throws -> TestCertificates {
        let directory =
            NSTemporaryDirectory() + "lb-itest-pki-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pki = TestCertificates(directory: directory)
        do {
            try pki.makeAll()
        } catch {
            pki.remove()
            throw error
        }
        return pki
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    private func makeAll() throws {
        let d = directory
        try openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "\(d)/ca.key", "-out", caCert, "-days", "30", "-subj", "/CN=lb-test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        try leaf("a", dnsName: "a.test", serial: 2)
        try leaf("wild", dnsName: "*.b.test", serial: 3)
        try openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "\(d)/other-ca.key", "-out", otherCACert, "-days", "30", "-subj", "/CN=lb-other-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        try clientLeaf("client", subject: "/O=Example Org/CN=alice", ca: "ca", serial: 4)
        try clientLeaf("intruder", subject: "/CN=mallory", ca: "other-ca", serial: 5)

        // `openssl x509` cannot date a certificate in the past (OpenSSL 3.0); `openssl ca` can.
        try Data(
            """
            [ca]
            default_ca = test_ca
            [test_ca]
            database = \(d)/index.txt
            new_certs_dir = \(d)
            serial = \(d)/serial
            default_md = sha256
            policy = any_name
            unique_subject = no
            [any_name]
            commonName = supplied
            [leaf]
            subjectAltName = DNS:expired.test
            basicConstraints = CA:FALSE
            extendedKeyUsage = serverAuth

            """.utf8
        ).write(to: URL(fileURLWithPath: "\(d)/ca.cnf"))
        try Data().write(to: URL(fileURLWithPath: "\(d)/index.txt"))
        try Data("10\n".utf8).write(to: URL(fileURLWithPath: "\(d)/serial"))
        try request("expired", subject: "/CN=expired.test")
        try openssl(
            "ca", "-batch", "-config", "\(d)/ca.cnf", "-cert", caCert, "-keyfile", "\(d)/ca.key",
            "-in", "\(d)/expired.csr", "-out", cert("expired"), "-notext", "-extensions", "leaf",
            "-startdate", "20200101000000Z", "-enddate", "20200201000000Z")
    }

    private func leaf(_ name: String, dnsName: String, serial: Int) throws {
        try issueLeaf(name, dnsName: dnsName, serial: String(serial, radix: 16))
    }

    /// Writes a new P-256 key and a certificate for it signed by the CA as `key(name)` and `cert(name)`, replacing
    /// files of that name. Throws `SetupError` if `openssl` fails.
    ///
    /// - Parameters:
    ///   - dnsName: the one DNS subjectAltName, and the subject's CN unless `subject` is given.
    ///   - ipAddress: an IP subjectAltName as well (`127.0.0.1` lets clients verify a URL without a name).
    ///   - serial: hex digits; `randomSerial()` gives one as public CAs must (at least 64 random bits).
    ///   - subject: e.g. `/CN=a.test/OU=second`.
    ///   - days: validity from now.
    ///   - crlURI: a CRL distribution point; nothing is served there, scanners only look for one.
    func issueLeaf(
        _ name: String, dnsName: String, ipAddress: String? = nil, serial: String, subject: String? = nil,
        days: Int = 30, crlURI: String? = nil
    ) throws {
        try request(name, subject: subject ?? "/CN=\(dnsName)")
        var extensions = "subjectAltName=DNS:\(dnsName)\(ipAddress.map { ",IP:\($0)" } ?? "")\n"
        extensions += "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        if let crlURI { extensions += "crlDistributionPoints=URI:\(crlURI)\n" }
        let ext = "\(directory)/\(name).ext"
        try Data(extensions.utf8).write(to: URL(fileURLWithPath: ext))
        try openssl(
            "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", caCert, "-CAkey", "\(directory)/ca.key",
            "-set_serial", "0x" + serial, "-days", String(days), "-extfile", ext, "-out", cert(name))
    }

    /// 32 hex digits, 127 random bits, the first digit 1-7: a positive serial with no leading zero byte, so it
    /// reads the same (upper case) in `openssl x509 -serial`, in Python's `getpeercert()` and here.
    static func randomSerial() -> String {
        String(Int.random(in: 1...7), radix: 16)
            + (1..<32).map { _ in String(Int.random(in: 0..<16), radix: 16, uppercase: true) }.joined()
    }

    /// A key and a client certificate for `subject`, signed by the CA named `ca` (`ca` or `other-ca`).
    private func clientLeaf(_ name: String, subject: String, ca: String, serial: Int) throws {
        try request(name, subject: subject)
        let ext = "\(directory)/\(name).ext"
        try Data("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n".utf8)
            .write(to: URL(fileURLWithPath: ext))
        try openssl(
            "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/\(ca).pem",
            "-CAkey", "\(directory)/\(ca).key", "-set_serial", String(serial), "-days", "30", "-extfile", ext,
            "-out", cert(name))
    }

    /// A new P-256 key and a certificate request for it.
    private func request(_ name: String, subject: String) throws {
        try openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key(name), "-out", "\(directory)/\(name).csr", "-subj", subject)
    }

    private func openssl(_ arguments: String...) throws {
        let result = ManagedProcess.run("openssl", arguments, timeout: 30)
        guard result.status == 0 else {
            throw SetupError(
                command: arguments.joined(separator: " "),
                output: String(decoding: result.stdout, as: UTF8.self) + result.stderr)
        }
    }
}

/// One `TestCertificates` per test class: made by the first test that asks (with `extra` run on it once), and
/// removed by the class tear-down (`remove()`), so a class's tests share a dozen `openssl` runs.
final class SharedTestCertificates: Sendable {
    private let made = Locked<TestCertificates?>(nil)
    private let extra: @Sendable (TestCertificates) throws -> Void

    init(extra: @escaping @Sendable (TestCertificates) throws -> Void = { _ in }) { self.extra = extra }

    func get() throws -> TestCertificates {
        try made.withLock { shared in
            if let shared { return shared }
            let certificates = try TestCertificates.make()
            do {
                try extra(certificates)
            } catch {
                certificates.remove()
                throw error
            }
            shared = certificates
            return certificates
        }
    }

    func remove() {
        made.withLock { shared in
            shared?.remove()
            shared = nil
        }
    }
}

extension TestCertificates {
    /// One `openssl s_client` connection to `port` (SNI `serverName`, verified against this CA) with a request for
    /// `/tk`, so a TLS 1.3 ticket has arrived before the session is written to `out`; `in` resumes a saved one.
    /// Returns "New" or "Reused" from its summary line, and fails the test when the backend did not answer.
    func ticketHandshake(
        port: Int, _ flag: String, out: String? = nil, in: String? = nil, serverName: String = "a.test",
        file: StaticString = #filePath, line: UInt = #line
    ) -> String {
        var arguments = [
            "s_client", "-connect", "127.0.0.1:\(port)", "-servername", serverName, "-CAfile", caCert, flag, "-ign_eof",
        ]
        if let out { arguments += ["-sess_out", out] }
        if let `in` { arguments += ["-sess_in", `in`] }
        let r = ManagedProcess.run(
            "openssl", arguments, input: Data("GET /tk HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".utf8),
            timeout: 20)
        let output = String(decoding: r.stdout, as: UTF8.self)
        XCTAssertTrue(output.contains("backend tk path=/tk"), "\(flag): \(output) \(r.stderr)", file: file, line: line)
        if output.contains("\nReused, ") { return "Reused" }
        if output.contains("\nNew, ") { return "New" }
        return "no handshake: \(output) \(r.stderr)"
    }
}

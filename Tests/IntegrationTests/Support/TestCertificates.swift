import Foundation

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
/// class tear-down.
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

    /// A key and a certificate for `dnsName` (subject CN and the one SAN), signed by the CA.
    private func leaf(_ name: String, dnsName: String, serial: Int) throws {
        try request(name, subject: "/CN=\(dnsName)")
        let ext = "\(directory)/\(name).ext"
        try Data("subjectAltName=DNS:\(dnsName)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n".utf8)
            .write(to: URL(fileURLWithPath: ext))
        try openssl(
            "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", caCert, "-CAkey", "\(directory)/ca.key",
            "-set_serial", String(serial), "-days", "30", "-extfile", ext, "-out", cert(name))
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

import Foundation
import XCTest

/// testssl.sh (Debian package `testssl.sh`, 3.0.8, installed as `testssl`) scans an HTTPS listener with every check
/// it runs by default: protocols, cipher suites and their order, forward secrecy, the certificate, resumption, the
/// known vulnerabilities, client simulations and the HTTP answer's headers. No finding may be rated MEDIUM or worse.
///
/// What the scan sees besides lb's TLS settings is made to pass on purpose, so that a finding means lb:
/// - the certificate is one a public CA could issue: valid for a year, a 128-bit serial, a CRL distribution point,
///   the scanned name in its subjectAltName, and a chain to a CA the scan is told to trust (`--add-ca`);
/// - the backend answers with HSTS and the usual security headers, as a site behind lb should; lb forwards them as
///   they come (it adds none of its own), and a bare backend draws a MEDIUM `security_headers` finding.
///
/// The JSON findings (`--severity MEDIUM` keeps MEDIUM and up, and testssl's own WARN and FATAL scan problems) and
/// the whole text report are kept at `<package root>/artifacts/testssl/` (gitignored), with `-workersN` in the
/// name for `make test`'s run with LB_TEST_WORKERS. The scan takes 45-60 s.
final class TestSSLScanTests: IntegrationTestCase {
    /// What testssl must not report: findings rated MEDIUM or worse, and its own warnings and fatal errors (a scan
    /// that could not finish a check proves nothing about it).
    private static let failingSeverities: Set<String> = ["MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL"]

    func testTestSSLFindsNothingRatedMediumOrWorse() throws {
        let testssl = try requiredTool("testssl", "testssl.sh", package: "testssl.sh")
        _ = try requiredTool("openssl", package: "openssl")
        let pki = try TestCertificates.make()
        addTeardownBlock { pki.remove() }
        try pki.issueLeaf(
            "scan", dnsName: "scan.test", serial: TestCertificates.randomSerial(), days: 365,
            crlURI: "http://crl.lb.test/ca.crl")
        let backend = try SpyBackend(reply: .perRequest(Self.applicationResponse))
        let lb = try LBBinaries.startServer(
            backends: [backend.address], configFile: try writeConfigFile([:]),
            extraArguments: ["--tls-cert", pki.cert("scan"), "--tls-key", pki.key("scan")], proxyKind: .proxyTLS)

        let (json, log) = try artifactPaths()
        let started = Date()
        // --nodns none with --ip: no DNS at all, scan.test is only the name sent (SNI, Host) and checked against
        // the certificate. --warnings batch: never stop to ask. The timeouts keep one hung check from hanging it.
        // The scan takes under a minute against an ordinary build, and 200 s and more against an instrumented one
        // (`Sanitizer`) on 2 busy cores, hence its longer limit there.
        let scan = ManagedProcess.run(
            testssl,
            [
                "--quiet", "--color", "0", "--warnings", "batch", "--severity", "MEDIUM", "--nodns", "none",
                "--ip", "127.0.0.1", "--add-ca", pki.caCert, "--connect-timeout", "10", "--openssl-timeout", "10",
                "--jsonfile", json, "--logfile", log, "scan.test:\(lb.proxyPort)",
            ], timeout: Sanitizer.measuresResources ? 240 : 600)
        let seconds = Date().timeIntervalSince(started)
        print("testssl took \(String(format: "%.1f", seconds)) s; findings \(json), report \(log)")
        // 242 and up: testssl could not run at all. Below that the status counts checks it could not finish, each
        // reported as a WARN finding below.
        XCTAssertLessThan(scan.status, 242, "testssl failed; report in \(log)\n\(scan.stderr)")

        let report = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        // The scan covered the TLS listener and the HTTP answer behind it, and ran to its end.
        for section in [
            "Testing protocols", "Testing cipher categories", "Testing server preferences", "Testing server defaults",
            "Testing HTTP header response", "Testing vulnerabilities", "Running client simulations", " Done ",
        ] {
            XCTAssertTrue(report.contains(section), "no \"\(section)\" in the report \(log)")
        }
        XCTAssertTrue(
            report.contains("Strict Transport Security    365 days"),
            "the backend's HSTS header did not come through lb: \(log)")
        XCTAssertGreaterThan(backend.requestCount, 0, "testssl's HTTP request never reached the backend")

        let findings = try Self.findings(inJSONFile: json)
        let failing = findings.filter { Self.failingSeverities.contains($0.severity) && !$0.isSessionFileRace }
        for finding in findings {
            print("testssl: \(finding)\(finding.isSessionFileRace ? " (the s_client race, not counted)" : "")")
        }
        XCTAssertEqual(
            failing.map(\.description), [],
            "testssl rated \(failing.count) finding(s) MEDIUM or worse (or could not finish a check); "
                + "findings \(json), report \(log)")
    }

    // MARK: Helpers

    /// A 200 with the headers testssl looks for, as a site behind lb would send them.
    private static let applicationResponse: [UInt8] = {
        let body = "scanned\n"
        return Array(
            ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
                + "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
                + "Content-Security-Policy: default-src 'none'\r\n\r\n" + body).utf8)
    }()

    /// One entry of testssl's flat JSON (`--jsonfile`).
    struct Finding: CustomStringConvertible {
        let id: String
        let severity: String
        let finding: String
        var description: String { "\(id) [\(severity)]: \(finding)" }

        /// testssl's resumption check runs `openssl s_client -sess_out FILE </dev/null`, which closes as soon as its
        /// handshake ends; with TLS 1.3 the session ticket comes after the handshake, and when the close wins the
        /// race no session file is written and the check ends in this WARN. That happens in a quarter to a third
        /// of the runs against lb and against `openssl s_server` alike, so it says nothing about lb; `TLSTests`
        /// checks resumption with clients that wait for the ticket.
        var isSessionFileRace: Bool {
            id.hasPrefix("sessionresumption_") && severity == "WARN"
                && finding == "check failed because of connect problem"
        }
    }

    /// The findings in a flat JSON file: an array of objects with `id`, `severity` and `finding`.
    /// - Throws: when the file is missing or is not that array (a scan that wrote nothing must not pass).
    static func findings(inJSONFile path: String) throws -> [Finding] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let list = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: data) as? [[String: Any]],
            "\(path) is not a JSON array of findings")
        return list.map {
            Finding(
                id: $0["id"] as? String ?? "?", severity: $0["severity"] as? String ?? "?",
                finding: $0["finding"] as? String ?? "")
        }
    }

    /// `<package root>/artifacts/testssl/testssl[-workersN].json` and `.log`, emptied: testssl will not write over
    /// an existing file.
    private func artifactPaths() throws -> (json: String, log: String) {
        let directory = LBBinaries.packageRoot.appendingPathComponent("artifacts/testssl")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let workers = ProcessInfo.processInfo.environment["LB_TEST_WORKERS"].flatMap { $0.isEmpty ? nil : $0 }
        let stem = directory.appendingPathComponent("testssl" + (workers.map { "-workers\($0)" } ?? "")).path
        for file in [stem + ".json", stem + ".log"] { try? FileManager.default.removeItem(atPath: file) }
        return (stem + ".json", stem + ".log")
    }
}

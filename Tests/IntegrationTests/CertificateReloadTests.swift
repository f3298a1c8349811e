import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Renewing a TLS listener's certificate under HTTPS load: the files are replaced and reloaded, through
/// `POST /manage/certificates/reload` and through SIGHUP, while keep-alive and new-connection clients
/// (`HTTPSLoad`, Python's `http.client` verifying every certificate) keep sending requests.
final class CertificateReloadTests: IntegrationTestCase {
    private var pki: TestCertificates!
    private var liveCert: String { pki.directory + "/live.pem" }
    private var liveKey: String { pki.directory + "/live.key" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try requiredTool("python3", package: "python3")
        _ = try requiredTool("openssl", package: "openssl")
        pki = try TestCertificates.make()
        addTeardownBlock { [pki] in pki?.remove() }
    }

    /// Four renewals (a new key and a certificate with a new serial and subject each time), alternately through the
    /// admin API and SIGHUP, then a broken certificate file (admin API) and a key that does not match (SIGHUP), then
    /// a good renewal again. After each good reload the very next handshake gets the new certificate, and every
    /// new-connection client soon does; a broken one is refused, names the file and keeps the running certificate.
    /// No request fails, no client ever goes back to an older certificate, and lb counts no TLS failure.
    func testRenewalsUnderLoadFailNoRequestAndNewHandshakesGetTheNewCertificate() throws {
        let serials = try (0...5).map { try issueGeneration($0) }
        try install(generation: 0)
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let config = try writeConfigFile([
            "listeners": [["address": "127.0.0.1:0", "tls": ["certificates": [["cert": liveCert, "key": liveKey]]]]]
        ])
        let lb = try LBBinaries.startServer(
            backends: [backend.address], configFile: config, listen: nil, proxyKind: .proxyTLS)
        let admin = AdminClient(port: lb.adminPort)
        let tlsFailuresBefore = try tlsFailures(admin)
        XCTAssertEqual(try servedSerial(lb.proxyPort), serials[0])

        let started = Date()
        let load = try HTTPSLoad.start(port: lb.proxyPort, caCert: pki.caCert, serverName: "a.test", backendName: "b1")
        var loadStopped = false
        defer { if !loadStopped { _ = try? load.stop() } }
        try load.waitUntil("both kinds of client are getting answers") {
            $0.keepAliveOK >= 20 && $0.newConnectionOK >= 20
        }

        for generation in 1...4 {
            try install(generation: generation)
            if generation % 2 == 1 {
                let answer = try admin.call("POST", "/manage/certificates/reload")
                XCTAssertEqual(answer.status, 200, answer.response.bodyString)
                XCTAssertEqual(answer.json["reloaded"] as? Bool, true, answer.response.bodyString)
                let files = (answer.json["certificates"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }
                XCTAssertEqual(files, [liveCert], answer.response.bodyString)
            } else {
                try sighupAndWait(lb, for: "TLS certificates reloaded")
            }
            // The reload is published before the admin API answers and before it is logged: no waiting.
            XCTAssertEqual(try servedSerial(lb.proxyPort), serials[generation], "generation \(generation)")
            try load.waitUntil("every new-connection client's latest handshake got generation \(generation)") {
                $0.serials.count == 3 && $0.serials.values.allSatisfy { $0 == serials[generation] }
            }
            try load.waitForProgress(60)
        }

        // A file that is no certificate at all, through the admin API: 422 naming it, nothing changes.
        try replace(liveCert, with: Data("not a certificate\n".utf8))
        let refused = try admin.call("POST", "/manage/certificates/reload")
        XCTAssertEqual(refused.status, 422, refused.response.bodyString)
        XCTAssertTrue(refused.error.contains("certificates not reloaded"), refused.error)
        XCTAssertTrue(refused.error.contains(liveCert), "the error must name the file: \(refused.error)")
        XCTAssertEqual(try servedSerial(lb.proxyPort), serials[4], "a refused reload kept the running certificate")
        try load.waitForProgress(60)

        // A key that does not match the certificate, through SIGHUP: logged naming the files, nothing changes.
        try replace(liveCert, with: try Data(contentsOf: URL(fileURLWithPath: pki.cert("gen5"))))
        try sighupAndWait(lb, for: "TLS certificates not reloaded; the running ones stay")
        let refusal = lb.process.log.split(separator: "\n").last { $0.contains("TLS certificates not reloaded") } ?? ""
        XCTAssertTrue(refusal.contains(liveKey) && refusal.contains("does not match"), String(refusal))
        XCTAssertEqual(try servedSerial(lb.proxyPort), serials[4], "a refused reload kept the running certificate")
        try load.waitForProgress(60)
        let afterRefusals = try load.status().serials
        XCTAssertTrue(
            afterRefusals.values.allSatisfy { $0 == serials[4] },
            "a client was served another certificate after a refused reload: \(afterRefusals)")

        // And a good renewal works again.
        try install(generation: 5)
        let answer = try admin.call("POST", "/manage/certificates/reload")
        XCTAssertEqual(answer.status, 200, answer.response.bodyString)
        XCTAssertEqual(try servedSerial(lb.proxyPort), serials[5])
        try load.waitUntil("every new-connection client's latest handshake got generation 5") {
            $0.serials.count == 3 && $0.serials.values.allSatisfy { $0 == serials[5] }
        }

        let final = try load.stop()
        loadStopped = true
        print(
            "certificate reloads under load: \(final.ok) requests (\(final.keepAliveOK) keep-alive over "
                + "\(final.keepAliveConnections) connections, \(final.newConnectionOK) on new connections) in "
                + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s, \(final.failureCount) failed")
        XCTAssertEqual(final.failureCount, 0, "failed requests: \(final.failures.prefix(10))")
        XCTAssertEqual(final.keepAliveConnections, 3, "a keep-alive client had to reconnect")
        for (client, met) in final.serialChanges {
            // In the order issued, each at most once (a refused reload shows up as no change).
            let order = met.map { serials.firstIndex(of: $0) ?? -1 }
            XCTAssertEqual(order, order.sorted(), "\(client) met the certificates in this order: \(order)")
            XCTAssertEqual(Set(order).count, order.count, "\(client) went back to a certificate: \(order)")
            XCTAssertFalse(order.contains(-1), "\(client) met a certificate never issued: \(met)")
        }
        XCTAssertEqual(try tlsFailures(admin), tlsFailuresBefore, "lb counted failed TLS connections")
    }

    // MARK: Helpers

    /// Issues `gen<N>` for a.test: a new key, a random serial, `OU=generation N`. Returns the serial.
    private func issueGeneration(_ generation: Int) throws -> String {
        let serial = TestCertificates.randomSerial()
        try pki.issueLeaf(
            "gen\(generation)", dnsName: "a.test", serial: serial, subject: "/CN=a.test/OU=generation \(generation)")
        return serial
    }

    /// Puts generation N's key and certificate in place of the live files, each by one rename, as a renewal tool
    /// does, so a reload never reads a half-written file.
    private func install(generation: Int) throws {
        try replace(liveKey, with: try Data(contentsOf: URL(fileURLWithPath: pki.key("gen\(generation)"))))
        try replace(liveCert, with: try Data(contentsOf: URL(fileURLWithPath: pki.cert("gen\(generation)"))))
    }

    private func replace(_ path: String, with data: Data) throws {
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Sends SIGHUP and waits until lb has logged `line` once more than before.
    private func sighupAndWait(_ lb: LBServerProcess, for line: String) throws {
        let before = lb.process.log.components(separatedBy: line).count
        lb.process.signal(SIGHUP)
        try eventually(timeout: 10, "lb logs \"\(line)\" after SIGHUP; log:\n\(lb.process.log)") {
            lb.process.log.components(separatedBy: line).count > before
        }
    }

    /// The serial (upper-case hex) of the certificate a new handshake for a.test gets, verified against the CA.
    private func servedSerial(_ port: Int) throws -> String {
        let handshake = ManagedProcess.run(
            "openssl",
            ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "a.test", "-CAfile", pki.caCert],
            timeout: 20)
        let output = String(decoding: handshake.stdout, as: UTF8.self)
        XCTAssertTrue(output.contains("Verify return code: 0 (ok)"), output + handshake.stderr)
        let serial = ManagedProcess.run("openssl", ["x509", "-noout", "-serial"], input: handshake.stdout, timeout: 20)
        let text = String(decoding: serial.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard serial.status == 0, text.hasPrefix("serial=") else {
            throw HarnessError.malformedResponse(
                reason: "no certificate in the handshake: \(serial.stderr)", raw: Array(handshake.stdout))
        }
        return String(text.dropFirst(7))
    }

    private func tlsFailures(_ admin: AdminClient) throws -> Int {
        let connections = try XCTUnwrap(try admin.call("GET", "/api/stats").json["connections"] as? [String: Any])
        return try XCTUnwrap(connections["tls_failures"] as? Int, "no connections.tls_failures in /api/stats")
    }
}

import Foundation
import XCTest

/// TLS from lb to its backends (`upstream_tls`, a server's `tls`), end to end against a real TLS server:
/// `Tests/conformance/tls_backend.py` (Python's `ssl`, so OpenSSL on the other side too), which writes in every
/// answer the server name it was sent, whether the session was resumed, the client certificate it verified and which
/// TLS connection carried the request. Certificates come from `TestCertificates` (leaf `a`, DNS `a.test`), plus a
/// second CA and a client certificate made here. Without `openssl` or `python3` every test skips.
final class UpstreamTLSTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates(extra: makeExtras)
    private var certs: TestCertificates!

    override func setUpWithError() throws {
        try super.setUpWithError()
        for tool in ["openssl", "python3"] where ManagedProcess.resolveExecutable(tool) == nil {
            throw XCTSkip("\(tool) is not installed; the upstream TLS tests need it")
        }
        certs = try Self.sharedCertificates.get()
    }

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    // MARK: verification, SNI, pooling

    func testRequestsGoOverVerifiedTLSWithSNIAndReuseOnePooledConnection() throws {
        let backend = try startTLSBackend()
        let lb = try startProxy(
            servers: [server("tls-1", port: backend.port)],
            upstreamTLS: ["ca_file": certs.caCert, "server_name": "a.test"], workers: 1)
        var lines: [String] = []
        for i in 0..<5 {
            let r = try HTTPClient.get(port: lb.proxyPort, path: "/pooled/\(i)")
            XCTAssertEqual(r.status, 200, r.bodyString)
            lines.append(r.bodyString)
        }
        for (i, line) in lines.enumerated() {
            XCTAssertTrue(line.hasPrefix("sni=a.test resumed=no client=none conn=1 "), "#\(i): \(line)")
            XCTAssertTrue(line.hasSuffix("path=/pooled/\(i)\n"), line)
        }
        let tls = try serverTLS(lb, "tls-1")
        XCTAssertEqual(tls["handshakes"], 1, "one handshake, then the pooled connection: \(tls)")
        XCTAssertEqual(tls["certificate_rejected"], 0)
        let metrics = PromSamples(try AdminClient(port: lb.adminPort).call("GET", "/metrics").response.bodyString)
        XCTAssertEqual(metrics[#"lb_upstream_tls_handshakes_total{server="tls-1",resumed="false"}"#], 1)
    }

    func testAServerIPAddressIsVerifiedWithoutSNIAndTheCertificateMustCarryIt() throws {
        // The `ip` leaf carries IP:127.0.0.1 and no DNS name: with no server_name, the host is what is checked.
        let backend = try startTLSBackend(leaf: "ip")
        let lb = try startProxy(
            servers: [server("by-ip", port: backend.port)], upstreamTLS: ["ca_file": certs.caCert])
        let r = try HTTPClient.get(port: lb.proxyPort, path: "/ip")
        XCTAssertEqual(r.status, 200, r.bodyString)
        XCTAssertTrue(r.bodyString.hasPrefix("sni=none "), "no SNI for an IP address (RFC 6066): \(r.bodyString)")
    }

    func testAnUntrustedOrMisnamedCertificateIsA502CountedAsRejected() throws {
        let backend = try startTLSBackend()
        let cases: [(name: String, tls: [String: Any])] = [
            ("another CA", ["ca_file": certs.directory + "/other-ca.pem", "server_name": "a.test"]),
            ("the system's trust store", ["server_name": "a.test"]),
            ("a name the certificate lacks", ["ca_file": certs.caCert, "server_name": "b.test"]),
        ]
        for c in cases {
            let lb = try startProxy(servers: [server("bad", port: backend.port)], upstreamTLS: c.tls)
            let r = try HTTPClient.get(port: lb.proxyPort, path: "/rejected")
            XCTAssertEqual(r.status, 502, "\(c.name): \(r.bodyString)")
            try eventually(timeout: 5, "\(c.name): certificate_rejected counted") {
                try self.serverTLS(lb, "bad")["certificate_rejected"] ?? 0 >= 1
            }
            let metrics = PromSamples(try AdminClient(port: lb.adminPort).call("GET", "/metrics").response.bodyString)
            XCTAssertGreaterThanOrEqual(
                metrics[#"lb_upstream_tls_failures_total{server="bad",reason="certificate"}"#] ?? 0, 1, c.name)
            XCTAssertEqual(try serverTLS(lb, "bad")["handshakes"], 0, c.name)
            lb.process.terminate()
        }
        // With verification off the same backend is reached (a test bed's choice, never a default).
        let lb = try startProxy(
            servers: [server("unverified", port: backend.port)], upstreamTLS: ["verify": false, "server_name": "x"])
        XCTAssertEqual(try HTTPClient.get(port: lb.proxyPort, path: "/unverified").status, 200)
    }

    // MARK: resumption

    func testANewConnectionToTheBackendResumesTheLastSession() throws {
        // The backend closes after every answer, so each request needs a new connection and a new handshake.
        let backend = try startTLSBackend(extra: ["--close"])
        let lb = try startProxy(
            servers: [server("resume", port: backend.port)],
            upstreamTLS: ["ca_file": certs.caCert, "server_name": "a.test"], workers: 1)
        var lines: [String] = []
        for i in 0..<4 {
            let r = try HTTPClient.get(port: lb.proxyPort, path: "/r/\(i)")
            XCTAssertEqual(r.status, 200, r.bodyString)
            lines.append(r.bodyString)
        }
        XCTAssertTrue(lines[0].hasPrefix("sni=a.test resumed=no client=none conn=1 "), lines[0])
        for (i, line) in lines.enumerated().dropFirst() {
            XCTAssertTrue(line.contains("resumed=yes"), "connection \(i + 1) resumes: \(line)")
            XCTAssertTrue(line.contains("conn=\(i + 1) "), line)
        }
        let tls = try serverTLS(lb, "resume")
        XCTAssertEqual(tls["handshakes"], 4, "\(tls)")
        XCTAssertEqual(tls["resumed"], 3, "\(tls)")

        // session_reuse off: every handshake is a full one.
        let fresh = try startProxy(
            servers: [server("fresh", port: backend.port)],
            upstreamTLS: ["ca_file": certs.caCert, "server_name": "a.test", "session_reuse": false], workers: 1)
        for i in 0..<3 {
            let r = try HTTPClient.get(port: fresh.proxyPort, path: "/f/\(i)")
            XCTAssertTrue(r.bodyString.contains("resumed=no"), r.bodyString)
        }
    }

    // MARK: client certificate

    func testAClientCertificateIsPresentedToABackendThatRequiresOne() throws {
        let backend = try startTLSBackend(extra: ["--client-ca", certs.caCert])
        let with = try startProxy(
            servers: [server("mtls", port: backend.port)],
            upstreamTLS: [
                "ca_file": certs.caCert, "server_name": "a.test",
                "client_certificate": ["cert": certs.cert("lb-client"), "key": certs.key("lb-client")],
            ])
        let r = try HTTPClient.get(port: with.proxyPort, path: "/mtls")
        XCTAssertEqual(r.status, 200, r.bodyString)
        XCTAssertTrue(r.bodyString.contains("client=lb-client "), r.bodyString)

        let without = try startProxy(
            servers: [server("no-cert", port: backend.port)],
            upstreamTLS: ["ca_file": certs.caCert, "server_name": "a.test"])
        XCTAssertEqual(try HTTPClient.get(port: without.proxyPort, path: "/mtls").status, 502)
    }

    // MARK: per-server settings and health checks

    func testAServerOverridesUpstreamTLSAndHealthChecksUseItsSettings() throws {
        let tlsBackend = try startTLSBackend()
        let plain = try LBBinaries.startDemoBackend(name: "plain")
        let lb = try startProxy(
            servers: [
                server("tls", port: tlsBackend.port),
                ["id": "plain", "host": "127.0.0.1", "port": plain.port, "tls": false],
                ["id": "misnamed", "host": "127.0.0.1", "port": tlsBackend.port, "tls": ["server_name": "nope.test"]],
            ],
            upstreamTLS: ["ca_file": certs.caCert, "server_name": "a.test"],
            health: ["enabled": true, "type": "http", "path": "/health", "interval": "200ms", "timeout": "2s",
                     "rise": 1, "fall": 1, "reuse_connection": false])
        let admin = AdminClient(port: lb.adminPort)
        try eventually(timeout: 10, "tls and plain up, misnamed down") {
            let s = try admin.servers()
            return s["tls"]?["state"] as? String == "up" && s["plain"]?["state"] as? String == "up"
                && s["misnamed"]?["state"] as? String == "down"
        }
        let misnamed = try XCTUnwrap(try admin.servers()["misnamed"])
        let check = (misnamed["health"] as? [String: Any])?["last_check"] as? [String: Any]
            ?? misnamed["last_check"] as? [String: Any]
        let error = check?["error"] as? String ?? ""
        XCTAssertTrue(error.contains("certificate verification failed"), "the check says why: \(misnamed)")
        // Each check is a new connection (`reuse_connection: false`), and after the first it resumes the checks'
        // last session.
        try eventually(timeout: 10, "a health check resumed its TLS session") {
            tlsBackend.process.log.contains("resumed=yes path=/health")
        }
    }

    /// By default a TLS server that keeps its connections alive is checked over one connection: one handshake,
    /// then one request per check.
    func testHealthChecksOfATLSServerReuseOneConnection() throws {
        let tlsBackend = try startTLSBackend()
        let lb = try startProxy(
            servers: [server("tls", port: tlsBackend.port)],
            upstreamTLS: ["ca_file": certs.caCert, "server_name": "a.test"],
            health: ["enabled": true, "type": "http", "path": "/health", "interval": "100ms", "timeout": "2s"])
        // "tls-backend: request conn=N resumed=no path=/health", one line per check.
        func checksPerConnection() -> [Substring: Int] {
            var counts: [Substring: Int] = [:]
            for line in tlsBackend.process.log.split(separator: "\n") where line.hasSuffix("path=/health") {
                guard let conn = line.split(separator: " ").first(where: { $0.hasPrefix("conn=") }) else { continue }
                counts[conn, default: 0] += 1
            }
            return counts
        }
        try eventually(timeout: 10, "five checks over one connection") {
            checksPerConnection().values.contains { $0 >= 5 }
        }
        XCTAssertEqual(checksPerConnection().count, 1, "one connection: \(checksPerConnection())")
        let s = try XCTUnwrap(try AdminClient(port: lb.adminPort).servers()["tls"])
        XCTAssertEqual(s["state"] as? String, "up")
    }

    // MARK: configuration errors

    func testCheckConfigNamesAMissingCAFileAndAnUnknownKey() throws {
        let missing = try writeConfigFile([
            "servers": [server("s", port: 9)], "upstream_tls": ["ca_file": "/nonexistent/ca.pem"],
        ])
        let a = ManagedProcess.run(try LBBinaries.path(of: .server), ["--config", missing, "--check-config"], timeout: 30)
        XCTAssertNotEqual(a.status, 0)
        let aText = String(decoding: a.stdout, as: UTF8.self) + a.stderr
        XCTAssertTrue(aText.contains("/nonexistent/ca.pem") && aText.contains("No such file"), aText)

        let typo = try writeConfigFile([
            "servers": [server("s", port: 9)], "upstream_tls": ["ca_fle": certs.caCert],
        ])
        let b = ManagedProcess.run(try LBBinaries.path(of: .server), ["--config", typo, "--check-config"], timeout: 30)
        XCTAssertNotEqual(b.status, 0)
        let bText = String(decoding: b.stdout, as: UTF8.self) + b.stderr
        XCTAssertTrue(bText.contains("upstream_tls.ca_fle") && bText.contains("ca_file"), bText)
    }

    // MARK: helpers

    private struct TLSBackend {
        let process: ManagedProcess
        let port: Int
    }

    /// `tls_backend.py` serving leaf `leaf` (default `a`, DNS a.test).
    private func startTLSBackend(leaf: String = "a", extra: [String] = []) throws -> TLSBackend {
        let python = try XCTUnwrap(ManagedProcess.resolveExecutable("python3"))
        let script = LBBinaries.packageRoot.appendingPathComponent("Tests/conformance/tls_backend.py").path
        let process = try ManagedProcess.start(
            python, [script, certs.cert(leaf), certs.key(leaf)] + extra, name: "tls-backend")
        return TLSBackend(process: process, port: try process.waitForListening(kind: .backend, timeout: 10))
    }

    private func server(_ id: String, port: Int) -> [String: Any] {
        ["id": id, "host": "127.0.0.1", "port": port]
    }

    /// lb with `servers` and `upstream_tls`; active health checks off unless `health` is given, so a verdict never
    /// depends on a probe's timing.
    private func startProxy(
        servers: [[String: Any]], upstreamTLS: [String: Any], workers: Int? = nil, health: [String: Any]? = nil
    ) throws -> LBServerProcess {
        var settings: [String: Any] = [
            "servers": servers, "upstream_tls": upstreamTLS,
            "health_check": health ?? ["enabled": false, "passive_failures": 0],
        ]
        if let workers { settings["workers"] = workers }
        let process = try LBBinaries.startServer(
            backends: [], configFile: try writeConfigFile(settings),
            extraArguments: workers.map { ["--workers", String($0)] } ?? [])
        return process
    }

    /// The server's `tls` counters from `/api/stats`.
    private func serverTLS(_ lb: LBServerProcess, _ id: String) throws -> [String: Int] {
        let stats = try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json
        let servers = try XCTUnwrap(stats["servers"] as? [[String: Any]], "no servers in /api/stats")
        let server = try XCTUnwrap(servers.first { $0["id"] as? String == id }, "no server \(id)")
        return try XCTUnwrap(server["tls"] as? [String: Int], "no tls counters for \(id)")
    }

    /// A second CA (`other-ca.pem`), a leaf for IP 127.0.0.1 only (`ip`) and a client certificate (`lb-client`,
    /// extended key usage clientAuth), next to `TestCertificates`' files.
    private static func makeExtras(_ certs: TestCertificates) throws {
        let d = certs.directory
        func openssl(_ arguments: [String]) throws {
            let r = ManagedProcess.run("openssl", arguments, timeout: 30)
            guard r.status == 0 else {
                throw TestCertificates.SetupError(
                    command: arguments.joined(separator: " "), output: String(decoding: r.stdout, as: UTF8.self) + r.stderr)
            }
        }
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(d)/other-ca.key",
            "-out", "\(d)/other-ca.pem", "-days", "30", "-subj", "/CN=other-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        for (name, subject, ext) in [
            ("ip", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
            ("lb-client", "/CN=lb-client", "extendedKeyUsage=clientAuth\n"),
        ] {
            try openssl([
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", certs.key(name), "-out", "\(d)/\(name).csr", "-subj", subject,
            ])
            try Data("basicConstraints=CA:FALSE\n\(ext)".utf8).write(to: URL(fileURLWithPath: "\(d)/\(name).ext"))
            try openssl([
                "x509", "-req", "-in", "\(d)/\(name).csr", "-CA", certs.caCert, "-CAkey", "\(d)/ca.key",
                "-set_serial", name == "ip" ? "40" : "41", "-days", "30", "-extfile", "\(d)/\(name).ext",
                "-out", certs.cert(name),
            ])
        }
    }
}

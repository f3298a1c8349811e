import Foundation
import XCTest

/// What a TLS listener does around its handshakes, over real loopback TLS: the per-turn and per-second caps on new
/// TLS connections hold clients in the accept queue instead of failing them, failed handshakes are counted by
/// reason, and the access log records each connection's version, cipher and server name.
final class TLSHygieneTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates()
    private var certs: TestCertificates!
    private var backend: DemoBackend!

    override func setUpWithError() throws {
        try super.setUpWithError()
        for tool in ["openssl", "python3"] where ManagedProcess.resolveExecutable(tool) == nil {
            throw XCTSkip("\(tool) is not installed; the TLS handshake limit tests need it")
        }
        certs = try Self.sharedCertificates.get()
        backend = try LBBinaries.startDemoBackend(name: "hl")
    }

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    func testTheRateCapSpacesNewConnectionsAndFailsNone() throws {
        let lb = try startServer(limits: ["tls_handshakes_per_second": 10, "tls_handshakes_per_turn": NSNull()])
        let started = Date()
        let result = clients(lb, connections: 30, parallel: 1)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(result, "ok 30", "every connection is served, only later")
        // Ten at once (one second's worth), then one every 100 ms: at least 2 s for 30.
        XCTAssertGreaterThan(elapsed, 1.7, "30 handshakes at 10/s")
        let deferred = try acceptsDeferred(lb)
        XCTAssertGreaterThan(deferred["per_second"] ?? 0, 0, "\(deferred)")
        XCTAssertEqual(deferred["per_turn"], 0)
    }

    func testThePerTurnCapTakesABurstOverSeveralTurnsAndFailsNone() throws {
        let lb = try startServer(limits: ["tls_handshakes_per_turn": 1])
        XCTAssertEqual(clients(lb, connections: 60, parallel: 30), "ok 60")
        let deferred = try acceptsDeferred(lb)
        XCTAssertGreaterThan(deferred["per_turn"] ?? 0, 0, "30 clients at once cannot all be taken in one turn")
        XCTAssertEqual(deferred["per_second"], 0)
    }

    func testFailedHandshakesAreCountedByReason() throws {
        let lb = try startServer(limits: [:], strictSNI: true)
        let port = lb.proxyPort
        // TLS 1.1 only; no known server name under strict SNI; ALPN spdy/3.1 only; plain HTTP to the TLS port.
        _ = sClient(port, ["-tls1_1", "-servername", "a.test"])
        _ = sClient(port, ["-servername", "unknown.test"])
        _ = sClient(port, ["-servername", "a.test", "-alpn", "spdy/3.1"])
        let plain = try RawHTTPConnection(port: port, timeout: 5)
        try plain.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        _ = try? plain.readAll()
        plain.close()
        let expected = ["protocol_version": 1, "server_name": 1, "application_protocol": 1, "not_tls": 1]
        let admin = AdminClient(port: lb.adminPort)
        try eventually(timeout: 5, "four failures counted by reason") {
            let reasons = try self.failureReasons(admin)
            return expected.allSatisfy { reasons[$0.key] == $0.value }
        }
        let metrics = PromSamples(try admin.call("GET", "/metrics").response.bodyString)
        XCTAssertEqual(metrics[#"lb_tls_failure_reasons_total{reason="protocol_version"}"#], 1)
        XCTAssertEqual(metrics[#"lb_tls_failure_reasons_total{reason="not_tls"}"#], 1)
        XCTAssertEqual(metrics["lb_tls_failures_total"], 4)
    }

    func testTheAccessLogRecordsTheTLSVersionCipherAndServerName() throws {
        for format in ["json", "common"] {
            let log = NSTemporaryDirectory() + "lb-tls-access-\(UUID().uuidString).log"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: log) }
            let lb = try startServer(limits: [:], accessLog: ["format": format, "path": log])
            _ = sClient(lb.proxyPort, ["-servername", "a.test", "-tls1_3", "-ign_eof"],
                        input: "GET /one HTTP/1.1\r\nHost: a.test\r\n\r\nGET /two HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            _ = sClient(lb.proxyPort, ["-noservername", "-tls1_2", "-ign_eof"],
                        input: "GET /three HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(lb.process.terminate(), 0, lb.process.log)
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.count, 3, "\(format): \(lines)")
            guard lines.count == 3 else { continue }
            if format == "json" {
                let objects = try lines.map {
                    try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], $0)
                }
                let tls = objects.map { $0["tls"] as? [String: Any] ?? [:] }
                XCTAssertEqual(tls.map { $0["version"] as? String }, ["TLSv1.3", "TLSv1.3", "TLSv1.2"])
                XCTAssertEqual(tls.map { $0["sni"] as? String }, ["a.test", "a.test", nil])
                XCTAssertTrue(tls[2]["sni"] is NSNull, "\(tls[2])")
                XCTAssertEqual(tls[0]["cipher"] as? String, "TLS_AES_128_GCM_SHA256")
                XCTAssertEqual(tls[2]["cipher"] as? String, "ECDHE-ECDSA-AES128-GCM-SHA256")
                XCTAssertEqual(objects.map { $0["path"] as? String }, ["/one", "/two", "/three"])
            } else {
                XCTAssertTrue(
                    lines[0].hasSuffix(" cause=ok tls=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 sni=a.test"), lines[0])
                XCTAssertTrue(
                    lines[2].hasSuffix(" cause=ok tls=TLSv1.2 cipher=ECDHE-ECDSA-AES128-GCM-SHA256 sni=-"), lines[2])
            }
        }
    }

    // MARK: helpers

    private func startServer(
        limits: [String: Any], strictSNI: Bool = false, accessLog: [String: Any]? = nil
    ) throws -> LBServerProcess {
        let tls: [String: Any] = [
            "certificates": [["cert": certs.cert("a"), "key": certs.key("a")]], "strict_sni": strictSNI,
        ]
        var settings: [String: Any] = [
            "listeners": [["address": "127.0.0.1:0", "tls": tls]], "servers": [["host": "127.0.0.1", "port": backend.port]],
            "health_check": ["enabled": false], "limits": limits, "workers": 1,
        ]
        if let accessLog { settings["access_log"] = accessLog }
        let config = try writeConfigFile(settings)
        return try LBBinaries.startServer(
            backends: [], configFile: config, extraArguments: ["--workers", "1"], listen: nil, proxyKind: .proxyTLS)
    }

    /// `connections` HTTPS requests, each on a new verified TLS connection, `parallel` at a time (Python threads).
    /// "ok N" when all N answered 200, else the first failure.
    private func clients(_ lb: LBServerProcess, connections: Int, parallel: Int) -> String {
        let script = """
            import concurrent.futures, socket, ssl, sys
            port, ca, total, parallel = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
            ctx = ssl.create_default_context(cafile=ca)
            def one(i):
                with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 20), server_hostname="a.test") as t:
                    t.sendall(f"GET /hl/{i} HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n".encode())
                    data = b""
                    while True:
                        chunk = t.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else repr(data[:40])
            with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
                statuses = list(pool.map(one, range(total)))
            bad = [s for s in statuses if s != "200"]
            print(f"ok {total}" if not bad else f"failed {bad[:5]}")
            """
        let r = ManagedProcess.run(
            "python3", ["-c", script, String(lb.proxyPort), certs.caCert, String(connections), String(parallel)],
            timeout: 60)
        return String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            + (r.status == 0 ? "" : " (exit \(r.status): \(r.stderr.suffix(500)))")
    }

    @discardableResult
    private func sClient(_ port: Int, _ extra: [String], input: String = "") -> Int32 {
        ManagedProcess.run(
            "openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.caCert] + extra,
            input: Data(input.utf8), timeout: 20
        ).status
    }

    private func connections(_ lb: LBServerProcess) throws -> [String: Any] {
        let stats = try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json
        return try XCTUnwrap(stats["connections"] as? [String: Any], "no connections in /api/stats")
    }

    private func acceptsDeferred(_ lb: LBServerProcess) throws -> [String: Int] {
        try XCTUnwrap(try connections(lb)["tls_accepts_deferred"] as? [String: Int], "no tls_accepts_deferred")
    }

    private func failureReasons(_ admin: AdminClient) throws -> [String: Int] {
        let stats = try admin.call("GET", "/api/stats").json
        let connections = try XCTUnwrap(stats["connections"] as? [String: Any])
        return try XCTUnwrap(connections["tls_failure_reasons"] as? [String: Int])
    }
}

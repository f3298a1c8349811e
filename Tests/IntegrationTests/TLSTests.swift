import Foundation
import XCTest

/// HTTPS listeners end to end with real TLS clients: `curl` (with `--resolve`, so SNI and hostname verification work on
/// loopback), `openssl s_client` (the certificate served, alerts, ALPN, protocol versions, session resumption) and
/// Python's `ssl`. The certificates are made once per class run by `TestCertificates` (an EC P-256 CA; leaves for
/// `a.test`, `*.b.test` and an expired one). Without `openssl` or `curl` every test skips.
final class TLSTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates()
    private var certs: TestCertificates!
    private var backend: DemoBackend!

    override func setUpWithError() throws {
        try super.setUpWithError()
        for (tool, package) in [("openssl", "openssl"), ("curl", "curl")]
        where ManagedProcess.resolveExecutable(tool) == nil {
            throw XCTSkip("\(tool) is not installed (Debian package \(package)); the HTTPS tests need it")
        }
        certs = try Self.sharedCertificates.get()
        backend = try LBBinaries.startDemoBackend(name: "b1")
    }

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    // MARK: 1. --tls-cert / --tls-key

    func testHTTPSFromTheTLSFlagsReachesTheBackendOverOneKeptAliveConnection() throws {
        let lb = try startServerWithTLSFlags()
        let result = curl(
            "a.test", port: lb.proxyPort, paths: ["/first", "/second"],
            ["-w", "%{http_code} connects=%{num_connects} http/%{http_version} verify=%{ssl_verify_result}\n"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(
            result.stdout,
            """
            backend b1 path=/first
            200 connects=1 http/2 verify=0
            backend b1 path=/second
            200 connects=0 http/2 verify=0

            """,
            "the second URL must reuse the first TLS connection (num_connects 0)")
    }

    // MARK: 2. SNI

    func testSNIPicksTheCertificateByNameAndTheDefaultOtherwise() throws {
        let lb = try startServer(tls: tlsSettings(["a", "wild"], defaultCertificate: 0))
        let port = lb.proxyPort
        let expected: [(sni: String?, subject: String)] = [
            ("a.test", "a.test"), ("x.b.test", "*.b.test"), ("X.B.Test", "*.b.test"), ("A.TEST", "a.test"),
            ("c.test", "a.test"), ("b.test", "a.test"), ("y.x.b.test", "a.test"), (nil, "a.test"),
        ]
        for (sni, subject) in expected {
            let s = sClient(port: port, serverName: sni)
            XCTAssertEqual(s.status, 0, "SNI \(sni ?? "(none)"): \(s.output)")
            XCTAssertEqual(s.subject, subject, "SNI \(sni ?? "(none)"): \(s.output)")
            XCTAssertTrue(s.output.contains("Verify return code: 0 (ok)"), "chain to the test CA: \(s.output)")
        }
        // curl verifies the name as well as the chain: it passes for the two configured names only.
        for name in ["a.test", "x.b.test"] {
            let r = curl(name, port: port, paths: ["/sni"])
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            XCTAssertEqual(r.stdout, "backend b1 path=/sni\n", name)
        }
        let unknown = curl("c.test", port: port, paths: ["/sni"])
        XCTAssertEqual(
            unknown.status, 60, "c.test gets a.test's certificate, which curl must reject: \(unknown.stderr)")

        // The default is the configured index, not simply the first certificate.
        let lb2 = try startServer(tls: tlsSettings(["a", "wild"], defaultCertificate: 1))
        XCTAssertEqual(sClient(port: lb2.proxyPort, serverName: "c.test").subject, "*.b.test")
        XCTAssertEqual(sClient(port: lb2.proxyPort, serverName: nil).subject, "*.b.test")
        XCTAssertEqual(sClient(port: lb2.proxyPort, serverName: "a.test").subject, "a.test")
    }

    // MARK: 3. strict_sni

    func testStrictSNIRefusesUnknownNamesAtTheHandshakeAndCountsThem() throws {
        let lb = try startServer(tls: tlsSettings(["a", "wild"], strictSNI: true))
        let admin = AdminClient(port: lb.adminPort)
        let before = try tlsFailures(admin)

        let refused = curl("c.test", port: lb.proxyPort, paths: ["/strict"])
        XCTAssertEqual(refused.status, 35, "curl must fail in the handshake: \(refused.stdout) \(refused.stderr)")
        XCTAssertTrue(refused.stderr.contains("unrecognized name"), refused.stderr)
        let s = sClient(port: lb.proxyPort, serverName: "c.test")
        XCTAssertNotEqual(s.status, 0, s.output)
        XCTAssertTrue(s.output.contains("SSL alert number 112"), "alert unrecognized_name: \(s.output)")
        XCTAssertNil(s.subject, "no certificate may be sent to an unknown name: \(s.output)")
        // No SNI at all names no configured server either.
        let anonymous = sClient(port: lb.proxyPort, serverName: nil)
        XCTAssertTrue(anonymous.output.contains("SSL alert number 112"), "no SNI under strict_sni: \(anonymous.output)")

        for name in ["a.test", "x.b.test"] {
            let r = curl(name, port: lb.proxyPort, paths: ["/strict"])
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            XCTAssertEqual(r.stdout, "backend b1 path=/strict\n", name)
        }
        // Three refused handshakes, and the two good ones did not count.
        try eventually(timeout: 5, "connections.tls_failures reaches \(before + 3)") {
            try tlsFailures(admin) == before + 3
        }
        let metrics = try admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("\nlb_tls_failures_total \(before + 3)\n"), metrics)
    }

    // MARK: 4. ALPN

    func testALPNPrefersH2ThenHTTP11AndRefusesAClientOfferingNeither() throws {
        let lb = try startServerWithTLSFlags()
        for (offer, chosen) in [("http/1.1", "http/1.1"), ("http/1.1,h2", "h2"), ("h2", "h2")] {
            let s = sClient(port: lb.proxyPort, serverName: "a.test", ["-alpn", offer])
            XCTAssertEqual(s.status, 0, "offer \(offer): \(s.output)")
            XCTAssertTrue(s.output.contains("ALPN protocol: \(chosen)"), "offer \(offer): \(s.output)")
        }
        let spdy = sClient(port: lb.proxyPort, serverName: "a.test", ["-alpn", "spdy/3.1"])
        XCTAssertNotEqual(spdy.status, 0, spdy.output)
        XCTAssertTrue(spdy.output.contains("no application protocol"), "alert no_application_protocol: \(spdy.output)")
        let none = sClient(port: lb.proxyPort, serverName: "a.test")
        XCTAssertEqual(none.status, 0, "a client without ALPN is served: \(none.output)")
        XCTAssertTrue(none.output.contains("No ALPN negotiated"), none.output)

        // Python's ssl offering HTTP/1.1 only, then speaking it on the connection.
        guard ManagedProcess.resolveExecutable("python3") != nil else { return }
        let script = """
            import socket, ssl, sys
            ctx = ssl.create_default_context(cafile=sys.argv[1])
            ctx.set_alpn_protocols(["http/1.1"])
            with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                    s.sendall(b"GET /python HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n")
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                    print(s.selected_alpn_protocol(), s.version(), data.split(b"\\r\\n")[0].decode(),
                          data.split(b"\\r\\n\\r\\n", 1)[1].decode(), end="")
            """
        let python = ManagedProcess.run("python3", ["-c", script, certs.caCert, String(lb.proxyPort)], timeout: 20)
        XCTAssertEqual(python.status, 0, python.stderr)
        XCTAssertEqual(
            String(decoding: python.stdout, as: UTF8.self),
            "http/1.1 TLSv1.3 HTTP/1.1 200 OK backend b1 path=/python\n")
    }

    // MARK: 5. Protocol versions

    func testOldProtocolVersionsAreRefusedAndMinVersion13RefusesTLS12() throws {
        let lb = try startServerWithTLSFlags()
        // SECLEVEL=0 lets OpenSSL 3 offer TLS 1.0/1.1 at all, so the refusal is the server's.
        for old in ["-tls1", "-tls1_1"] {
            let s = sClient(port: lb.proxyPort, serverName: "a.test", [old, "-cipher", "DEFAULT@SECLEVEL=0"])
            XCTAssertNotEqual(s.status, 0, "\(old): \(s.output)")
            XCTAssertTrue(s.output.contains("alert protocol version"), "\(old): \(s.output)")
        }
        for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
            let s = sClient(port: lb.proxyPort, serverName: "a.test", [flag])
            XCTAssertEqual(s.status, 0, "\(flag): \(s.output)")
            XCTAssertTrue(s.output.contains("New, \(version), Cipher is"), "\(flag): \(s.output)")
        }

        let strict = try startServer(tls: tlsSettings(["a"], minVersion: "1.3"))
        let tls12 = sClient(port: strict.proxyPort, serverName: "a.test", ["-tls1_2"])
        XCTAssertNotEqual(tls12.status, 0, tls12.output)
        XCTAssertTrue(tls12.output.contains("alert protocol version"), tls12.output)
        let tls13 = sClient(port: strict.proxyPort, serverName: "a.test", ["-tls1_3"])
        XCTAssertEqual(tls13.status, 0, tls13.output)
        XCTAssertTrue(tls13.output.contains("New, TLSv1.3, Cipher is"), tls13.output)
        let curl12 = curl("a.test", port: strict.proxyPort, paths: ["/v"], ["--tls-max", "1.2"])
        XCTAssertEqual(curl12.status, 35, curl12.stderr)
        let curlDefault = curl("a.test", port: strict.proxyPort, paths: ["/v"], ["-w", "%{http_code}"])
        XCTAssertEqual(curlDefault.stdout, "backend b1 path=/v\n200", curlDefault.stderr)
    }

    /// lb's order of cipher suites decides (AES-128-GCM before AES-256-GCM), whatever the client's, except that a
    /// client listing ChaCha20 first gets ChaCha20.
    func testTheServersCipherOrderDecidesExceptForAClientPreferringChaCha20() throws {
        let lb = try startServerWithTLSFlags()
        let cases: [(flags: [String], cipher: String)] = [
            (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"],
             "ECDHE-ECDSA-AES128-GCM-SHA256"),
            (["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"],
             "ECDHE-ECDSA-CHACHA20-POLY1305"),
            (["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"], "TLS_AES_128_GCM_SHA256"),
            (["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"],
             "TLS_CHACHA20_POLY1305_SHA256"),
        ]
        for (flags, cipher) in cases {
            let s = sClient(port: lb.proxyPort, serverName: "a.test", flags)
            XCTAssertEqual(s.status, 0, "\(flags): \(s.output)")
            XCTAssertTrue(s.output.contains(", Cipher is \(cipher)\n"), "\(flags) must get \(cipher): \(s.output)")
        }
    }

    // MARK: 6. Resumption

    /// With two workers on one SO_REUSEPORT address the kernel spreads connections by source port, so a dozen
    /// reconnects land on both workers (all on one: p = 2^-12); each must resume the session the first one got.
    func testSessionsResumeAcrossWorkersWithTLS12AndTLS13() throws {
        // `--workers 2` also beats an LB_TEST_WORKERS flag startServer may add (the last flag wins).
        let lb = try startServer(tls: tlsSettings(["a"]), settings: ["workers": 2], extraArguments: ["--workers", "2"])
        for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
            let session = certs.directory + "/session\(flag).pem"
            // A request with -ign_eof keeps s_client reading until the server closes, so a TLS 1.3 ticket (sent
            // after the handshake) has arrived before the session is written.
            let first = sClient(
                port: lb.proxyPort, serverName: "a.test", [flag, "-sess_out", session, "-ign_eof"],
                input: request("/first"))
            XCTAssertEqual(first.status, 0, first.output)
            XCTAssertTrue(first.output.contains("New, \(version), Cipher is"), first.output)
            XCTAssertTrue(first.output.contains("backend b1 path=/first"), first.output)
            var upstreamConnections: Set<String> = []
            for i in 0..<12 {
                let again = sClient(
                    port: lb.proxyPort, serverName: "a.test", [flag, "-sess_in", session, "-ign_eof"],
                    input: request("/again/\(i)"))
                XCTAssertEqual(again.status, 0, again.output)
                XCTAssertTrue(
                    again.output.contains("Reused, \(version), Cipher is"), "\(version) #\(i): \(again.output)")
                XCTAssertTrue(again.output.contains("backend b1 path=/again/\(i)"), again.output)
                let lines = again.output.split(whereSeparator: \.isNewline)  // "\r\n" is one Character
                if let line = lines.first(where: { $0.hasPrefix("X-Connection:") }) {
                    upstreamConnections.insert(String(line.dropFirst(13)).trimmingCharacters(in: .whitespaces))
                }
            }
            print("\(version): 12 resumed connections used upstream connections \(upstreamConnections.sorted())")
        }
    }

    // MARK: 7. Big bodies

    func testLargeDownloadAndUploadOverTLSKeepTheirDigests() throws {
        try requireTool("sha256sum")
        let lb = try startServerWithTLSFlags()
        let pid = lb.process.pid
        let warmUp = curl(
            "a.test", port: lb.proxyPort, paths: ["/bytes?size=1000"], ["-o", "/dev/null", "-w", "%{size_download}"])
        XCTAssertEqual(warmUp.stdout, "1000", warmUp.stderr)
        let baseline = try peakRssKiB(pid: pid)

        let downloadSize = 64 << 20
        let downloaded = certs.directory + "/download-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: downloaded) }
        var started = Date()
        let download = curl(
            "a.test", port: lb.proxyPort, paths: ["/bytes?size=\(downloadSize)"],
            ["-o", downloaded, "-w", "%{http_code} %{size_download}"], timeout: 120)
        let downloadSeconds = Date().timeIntervalSince(started)
        XCTAssertEqual(download.status, 0, download.stderr)
        XCTAssertEqual(download.stdout, "200 \(downloadSize)")
        var pattern = [UInt8]()
        pattern.reserveCapacity(downloadSize)
        let block = (0..<251).map { UInt8($0) }
        while pattern.count < downloadSize { pattern += block.prefix(downloadSize - pattern.count) }
        XCTAssertEqual(try sha256sum(file: downloaded), try sha256sum(Data(pattern)), "the 64 MiB body changed")
        let afterDownload = try peakRssKiB(pid: pid)

        let uploadSize = 16 << 20
        let upload = TestData.noise(uploadSize)
        let uploadFile = certs.directory + "/upload-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: uploadFile) }
        try Data(upload).write(to: URL(fileURLWithPath: uploadFile))
        let expected = try sha256sum(file: uploadFile)
        started = Date()
        let digest = curl(
            "a.test", port: lb.proxyPort, paths: ["/digest"], ["--data-binary", "@" + uploadFile], timeout: 120)
        let uploadSeconds = Date().timeIntervalSince(started)
        XCTAssertEqual(digest.status, 0, digest.stderr)
        XCTAssertEqual(digest.stdout, "sha256=\(expected) length=\(uploadSize)\n")
        let afterUpload = try peakRssKiB(pid: pid)

        print(
            "TLS: 64 MiB download \(String(format: "%.2f", downloadSeconds)) s, 16 MiB upload "
                + "\(String(format: "%.2f", uploadSeconds)) s; proxy VmHWM baseline \(baseline) KiB, after download "
                + "\(afterDownload) KiB, after upload \(afterUpload) KiB")
        if Sanitizer.measuresResources {
            XCTAssertLessThan(afterUpload - baseline, 48 << 10, "the proxy buffered TLS bodies instead of streaming them")
        }
    }

    // MARK: 8. TLS and plain listeners together

    func testATLSAndAPlainListenerServeAtTheSameTime() throws {
        let lb = try startServer(tls: tlsSettings(["a"]), plainListener: true)
        let plainPort = try lb.process.waitForListening(kind: .proxy)
        XCTAssertNotEqual(plainPort, lb.proxyPort)
        let paths = (0..<20).map { "/both/\($0)" }
        let expected = paths.map { "backend b1 path=\($0)\n" }.joined()
        // Both curls at once, each with 20 requests on one connection.
        let commands = [
            ("https", curlArguments("a.test", port: lb.proxyPort, paths: paths)),
            ("http", ["-sS", "--max-time", "20"] + paths.map { "http://127.0.0.1:\(plainPort)\($0)" }),
        ]
        let results = Locked<[String: (status: Int32, stdout: Data, stderr: String)]>([:])
        DispatchQueue.concurrentPerform(iterations: commands.count) { i in
            let r = ManagedProcess.run("curl", commands[i].1, timeout: 30)
            results.withLock { $0[commands[i].0] = r }
        }
        XCTAssertEqual(results.current.count, 2)
        for (scheme, r) in results.current {
            XCTAssertEqual(r.status, 0, "\(scheme): \(r.stderr)")
            XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), expected, scheme)
        }
        // The backend learns which one the client used.
        let tlsHead = curl("a.test", port: lb.proxyPort, paths: ["/headers"])
        XCTAssertTrue(tlsHead.stdout.contains("\r\nX-Forwarded-Proto: https\r\n"), tlsHead.stdout + tlsHead.stderr)
        let plainHead = run("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(plainPort)/headers"])
        XCTAssertTrue(plainHead.stdout.contains("\r\nX-Forwarded-Proto: http\r\n"), plainHead.stdout + plainHead.stderr)
        // Each port speaks only its own protocol.
        let tlsOnPlain = curl("a.test", port: plainPort, paths: ["/x"])
        XCTAssertEqual(tlsOnPlain.status, 35, "TLS to the plain port: \(tlsOnPlain.stderr)")
        let plainOnTLS = run("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(lb.proxyPort)/x"])
        XCTAssertEqual(plainOnTLS.status, 52, "plain HTTP to the TLS port gets no reply: \(plainOnTLS.stderr)")
    }

    // MARK: 9. Bad certificate files

    func testBadCertificateFilesStopTheServerWithTheFileAndTheProblem() throws {
        let missing = certs.directory + "/missing.pem"
        let cases: [(cert: String, key: String, mustSay: [String])] = [
            (certs.cert("expired"), certs.key("expired"), [certs.cert("expired"), "expired"]),
            (certs.cert("a"), certs.key("wild"), [certs.key("wild"), certs.cert("a"), "does not match"]),
            (missing, certs.key("a"), [missing, "No such file"]),
            (certs.cert("a"), missing, [missing, "No such file"]),
        ]
        let base = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--backend", backend.address]
        for (cert, key, mustSay) in cases {
            let flags = ["--tls-cert", cert, "--tls-key", key]
            let start = run(try LBBinaries.path(of: .server), base + flags, timeout: 15)
            XCTAssertEqual(start.status, 1, "lb-server \(flags) must exit 1: \(start.stdout)\(start.stderr)")
            XCTAssertFalse(start.stdout.contains("listening on"), "announced a listener: \(start.stdout)")
            for text in mustSay {
                XCTAssertTrue(start.stderr.contains(text), "\(flags): no \"\(text)\" in \(start.stderr)")
            }

            let check = run(try LBBinaries.path(of: .server), base + flags + ["--check-config"], timeout: 15)
            XCTAssertEqual(check.status, 2, "--check-config \(flags): \(check.stdout)\(check.stderr)")
            for text in mustSay {
                XCTAssertTrue(check.stderr.contains(text), "check \(flags): no \"\(text)\" in \(check.stderr)")
            }
        }

        // In a config file, the bad one of two certificates is found and its listener named by --check-config.
        let config = try writeConfigFile([
            "servers": [["host": "127.0.0.1", "port": backend.port]],
            "admin": ["listen": "127.0.0.1:0"],
            "listeners": [["address": "127.0.0.1:0", "tls": tlsSettings(["a", "expired"])]],
        ])
        let start = run(try LBBinaries.path(of: .server), ["--config", config], timeout: 15)
        XCTAssertEqual(start.status, 1, start.stdout + start.stderr)
        XCTAssertTrue(start.stderr.contains(certs.cert("expired")) && start.stderr.contains("expired at"), start.stderr)
        let check = run(try LBBinaries.path(of: .server), ["--config", config, "--check-config"], timeout: 15)
        XCTAssertEqual(check.status, 2, check.stdout + check.stderr)
        XCTAssertTrue(check.stderr.contains("listeners[0].tls"), check.stderr)
        XCTAssertTrue(check.stderr.contains(certs.cert("expired")), check.stderr)
    }

    // MARK: 10. Plain HTTP on the TLS port

    func testPlainHTTPOnTheTLSPortIsClosedAndTLSKeepsWorking() throws {
        let lb = try startServerWithTLSFlags()
        let admin = AdminClient(port: lb.adminPort)
        let before = try tlsFailures(admin)
        // A whole request, and a head cut short: either way the first bytes are not a TLS record, so the server
        // must close without waiting for more.
        for text in ["GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "GET / HTTP/1.1\r\nHost: a.te"] {
            let connection = try RawHTTPConnection(port: lb.proxyPort)
            defer { connection.close() }
            try connection.send(text)
            let started = Date()
            let received = try connection.readAll(timeout: 5)
            XCTAssertLessThan(Date().timeIntervalSince(started), 2, "the close came late")
            XCTAssertFalse(
                received.starts(with: Array("HTTP/".utf8)), "an HTTP answer on the TLS port: \(received.debugText)")
            // Whatever comes back is at most a TLS alert record.
            XCTAssertTrue(received.isEmpty || received.first == 0x15, "not a TLS alert: \(received.debugText)")
        }
        let r = curl("a.test", port: lb.proxyPort, paths: ["/still"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "backend b1 path=/still\n")
        try eventually(timeout: 5, "connections.tls_failures reaches \(before + 2)") {
            try tlsFailures(admin) == before + 2
        }
    }

    // MARK: 11. Handshake timeout

    /// A client that connects and never finishes its handshake (silent, or stalled inside the ClientHello record) is
    /// closed after `client_header`, which covers the handshake on a new HTTPS connection.
    func testAnUnfinishedHandshakeIsClosedAfterTheClientHeaderTimeout() throws {
        let lb = try startServer(tls: tlsSettings(["a"]), settings: ["timeouts": ["client_header": "500ms"]])
        for (what, bytes) in [("silent", [UInt8]()), ("3 bytes of a ClientHello record", [0x16, 0x03, 0x01])] {
            let connection = try RawHTTPConnection(port: lb.proxyPort, timeout: 10)
            defer { connection.close() }
            let started = Date()
            if !bytes.isEmpty { try connection.send(bytes) }
            XCTAssertTrue(connection.isClosedByPeer(timeout: 5), "\(what): still open after 5 s")
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertGreaterThan(elapsed, 0.3, "\(what): closed before client_header ran out")
            XCTAssertLessThan(elapsed, 3, "\(what): closed long after client_header (500ms)")
            XCTAssertTrue(connection.unconsumedBytes.isEmpty || connection.unconsumedBytes.first == 0x15, what)
        }
        let r = curl("a.test", port: lb.proxyPort, paths: ["/after"])
        XCTAssertEqual(r.stdout, "backend b1 path=/after\n", r.stderr)
    }

    // MARK: 12. Closing

    /// A client that ends the connection with close_notify gets the server's close_notify back before the TCP close
    /// (RFC 8446 §6.1, RFC 5246 §7.2.1): Python's `unwrap()` waits for it and fails on a bare EOF.
    func testTheServerAnswersAClientsCloseNotify() throws {
        try requireTool("python3")
        let lb = try startServerWithTLSFlags()
        let script = """
            import socket, ssl, sys
            ctx = ssl.create_default_context(cafile=sys.argv[1])
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                ctx.maximum_version = version
                with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as raw:
                    s = ctx.wrap_socket(raw, server_hostname="a.test")
                    s.sendall(b"GET /kept HTTP/1.1\\r\\nHost: a.test\\r\\n\\r\\n")
                    data = b""
                    while not data.endswith(b"path=/kept\\n"):
                        data += s.recv(65536)
                    name = s.version()
                    try:
                        s.unwrap()
                        print(name, "close_notify answered")
                    except (ssl.SSLError, OSError) as e:
                        print(name, "close_notify not answered:", repr(e))
            """
        let python = ManagedProcess.run("python3", ["-c", script, certs.caCert, String(lb.proxyPort)], timeout: 30)
        XCTAssertEqual(python.status, 0, python.stderr)
        XCTAssertEqual(
            String(decoding: python.stdout, as: UTF8.self),
            "TLSv1.2 close_notify answered\nTLSv1.3 close_notify answered\n")
    }

    /// With `session_tickets: false` a TLS 1.2 client resumes by session id from the server's cache. OpenSSL drops a
    /// session from that cache when its SSL is freed without having sent close_notify, so a client that closes first
    /// must not cost it its session.
    func testTLS12SessionIDsResumeAfterTheClientClosesFirst() throws {
        var tls = tlsSettings(["a"])
        tls["session_tickets"] = false
        let lb = try startServer(tls: tls)
        let admin = AdminClient(port: lb.adminPort)
        let session = certs.directory + "/session-id-\(UUID().uuidString).pem"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: session) }
        // stdin /dev/null: s_client sends close_notify right after the handshake and exits.
        let first = sClient(port: lb.proxyPort, serverName: "a.test", ["-tls1_2", "-sess_out", session])
        XCTAssertTrue(first.output.contains("New, TLSv1.2, Cipher is"), first.output)
        XCTAssertFalse(first.output.contains("TLS session ticket:"), "tickets are off: \(first.output)")
        for i in 0..<3 {
            // The server has finished with the previous connection (and freed its SSL) before the next one.
            try eventually(timeout: 5, "connections.open back to 0") {
                let connections = try admin.call("GET", "/api/stats").json["connections"] as? [String: Any]
                return connections?["open"] as? Int == 0
            }
            let again = sClient(port: lb.proxyPort, serverName: "a.test", ["-tls1_2", "-sess_in", session])
            XCTAssertTrue(again.output.contains("Reused, TLSv1.2, Cipher is"), "#\(i): \(again.output)")
        }
    }

    // MARK: Helpers

    /// `lb-server --listen 127.0.0.1:0 --tls-cert a.pem --tls-key a.key`; `proxyPort` is the TLS port. The config
    /// file only turns health checks off: the debug-built demo backend's loop is busy for seconds making a 64 MiB body,
    /// and a probe timing out meanwhile would take the only backend out.
    private func startServerWithTLSFlags() throws -> LBServerProcess {
        try LBBinaries.startServer(
            backends: [backend.address], configFile: try writeConfigFile([:]),
            extraArguments: ["--tls-cert", certs.cert("a"), "--tls-key", certs.key("a")], proxyKind: .proxyTLS)
    }

    /// `lb-server --config FILE` whose `listeners` are one TLS listener (its port is `proxyPort`) and, with
    /// `plainListener`, a plain one after it (`process.waitForListening(kind: .proxy)`).
    private func startServer(
        tls: [String: Any], plainListener: Bool = false, settings: [String: Any] = [:], extraArguments: [String] = []
    ) throws -> LBServerProcess {
        var listeners: [[String: Any]] = [["address": "127.0.0.1:0", "tls": tls]]
        if plainListener { listeners.append(["address": "127.0.0.1:0"]) }
        var all = settings
        all["listeners"] = listeners
        return try LBBinaries.startServer(
            backends: [backend.address], configFile: try writeConfigFile(all), extraArguments: extraArguments,
            listen: nil, proxyKind: .proxyTLS)
    }

    /// A listener's `tls` object for the named `TestCertificates` leaves.
    private func tlsSettings(
        _ names: [String], defaultCertificate: Int = 0, strictSNI: Bool = false, minVersion: String = "1.2"
    ) -> [String: Any] {
        [
            "certificates": names.map { ["cert": certs.cert($0), "key": certs.key($0)] },
            "default_certificate": defaultCertificate, "strict_sni": strictSNI, "min_version": minVersion,
        ]
    }

    private func request(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    }

    /// `curl -sS --resolve NAME:PORT:127.0.0.1 --cacert ca.pem EXTRA https://NAME:PORT/PATH...`: SNI and hostname
    /// verification for NAME, on loopback.
    private func curl(
        _ name: String, port: Int, paths: [String], _ extra: [String] = [], timeout: TimeInterval = 20
    ) -> (status: Int32, stdout: String, stderr: String) {
        run("curl", curlArguments(name, port: port, paths: paths, extra, timeout: timeout), timeout: timeout + 10)
    }

    private func curlArguments(
        _ name: String, port: Int, paths: [String], _ extra: [String] = [], timeout: TimeInterval = 20
    ) -> [String] {
        ["-sS", "--max-time", String(Int(timeout)), "--resolve", "\(name):\(port):127.0.0.1", "--cacert", certs.caCert]
            + extra + paths.map { "https://\(name):\(port)\($0)" }
    }

    /// What `openssl s_client` printed (stdout and stderr together) and parts of it.
    private struct SClientResult {
        let status: Int32
        let output: String
        /// The served leaf's subject CN (`subject=CN = a.test`), nil if no certificate came.
        var subject: String? {
            output.split(separator: "\n").first { $0.hasPrefix("subject=CN = ") }.map { String($0.dropFirst(13)) }
        }
    }

    /// `openssl s_client -connect 127.0.0.1:PORT [-servername NAME | -noservername] -CAfile ca.pem EXTRA`, with
    /// `input` on stdin (nothing: it closes right after the handshake).
    private func sClient(
        port: Int, serverName: String?, _ extra: [String] = [], input: String? = nil
    ) -> SClientResult {
        let name = serverName.map { ["-servername", $0] } ?? ["-noservername"]
        let r = ManagedProcess.run(
            "openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.caCert] + name + extra,
            input: input.map { Data($0.utf8) }, timeout: 20)
        return SClientResult(status: r.status, output: String(decoding: r.stdout, as: UTF8.self) + r.stderr)
    }

    private func run(
        _ executable: String, _ arguments: [String], timeout: TimeInterval = 30
    ) -> (status: Int32, stdout: String, stderr: String) {
        let r = ManagedProcess.run(executable, arguments, timeout: timeout)
        return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
    }

    private func tlsFailures(_ admin: AdminClient) throws -> Int {
        let stats = try admin.call("GET", "/api/stats").json
        let connections = try XCTUnwrap(stats["connections"] as? [String: Any], "no connections in /api/stats")
        return try XCTUnwrap(connections["tls_failures"] as? Int, "no connections.tls_failures in /api/stats")
    }

    private func sha256sum(file: String) throws -> String {
        let r = ManagedProcess.run("sha256sum", [file], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(decoding: r.stdout.prefix(64), as: UTF8.self)
    }

    private func sha256sum(_ data: Data) throws -> String {
        let r = ManagedProcess.run("sha256sum", [], input: data, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(decoding: r.stdout.prefix(64), as: UTF8.self)
    }

    private func requireTool(_ name: String) throws {
        guard ManagedProcess.resolveExecutable(name) != nil else { throw XCTSkip("\(name) is not installed") }
    }
}

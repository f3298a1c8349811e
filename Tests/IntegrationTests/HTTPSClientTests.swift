import Foundation
import XCTest

/// Real HTTPS clients against a TLS listener, each verifying (or, for the benchmarks, at least completing) TLS with
/// lb and checking every answer, while a `SpyBackend` behind lb counts what arrived: curl (keep-alive, a chunked
/// upload from stdin, `Expect: 100-continue`), Python `requests` (certificate verified, one connection for a
/// Session), ApacheBench (keep-alive, and a handshake per request over TLS 1.2) and wrk. The certificate names
/// `localhost` and `127.0.0.1`, so clients verify it with a plain `https://127.0.0.1:PORT` URL.
///
/// `TLSTests` covers curl's and openssl's view of the handshake (SNI, ALPN, versions, resumption); `RealClientTests`
/// runs the same kinds of client over plain HTTP. A missing client skips its test locally and fails it under CI.
final class HTTPSClientTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates { certificates in
        try certificates.issueLeaf("local", dnsName: "localhost", ipAddress: "127.0.0.1", serial: "4")
    }
    private var certs: TestCertificates!
    private var backend: SpyBackend!
    private var lb: LBServerProcess!
    private var base: String { "https://127.0.0.1:\(lb.proxyPort)" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        _ = try requiredTool("openssl", package: "openssl")
        certs = try Self.sharedCertificates.get()
        backend = try SpyBackend(reply: .custom { request, _ in Self.answer(request) })
        lb = try LBBinaries.startServer(
            backends: [backend.address], configFile: try writeConfigFile([:]),
            extraArguments: ["--tls-cert", certs.cert("local"), "--tls-key", certs.key("local")],
            proxyKind: .proxyTLS)
    }

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    // MARK: curl

    func testCurlKeepsOneConnectionAndStreamsChunkedAndExpectContinueUploads() throws {
        let curl = try requiredTool("curl", package: "curl")
        let paths = (0..<10).map { "/curl/\($0)" }
        let gets = ManagedProcess.run(
            curl,
            ["-sS", "--max-time", "20", "--cacert", certs.caCert, "-w", "%{http_code} connects=%{num_connects}\n"]
                + paths.map { base + $0 }, timeout: 30)
        XCTAssertEqual(gets.status, 0, gets.stderr)
        XCTAssertEqual(
            String(decoding: gets.stdout, as: UTF8.self),
            paths.enumerated().map { "spy path=\($1)\n200 connects=\($0 == 0 ? 1 : 0)\n" }.joined(),
            "ten answers over one verified connection")

        let chunked = TestData.noise(300_000)
        let upload = ManagedProcess.run(
            curl,
            ["-sS", "--max-time", "20", "--cacert", certs.caCert, "-T", "-", "-H", "Transfer-Encoding: chunked",
             base + "/curl/chunked"],
            input: Data(chunked), timeout: 30)
        XCTAssertEqual(upload.status, 0, upload.stderr)
        XCTAssertEqual(String(decoding: upload.stdout, as: UTF8.self), Self.body("/curl/chunked", chunked))

        let small = TestData.noise(4_096)
        let expect = ManagedProcess.run(
            curl,
            ["-sS", "--max-time", "20", "--cacert", certs.caCert, "-H", "Expect: 100-continue", "--data-binary",
             "@-", base + "/curl/expect"],
            input: Data(small), timeout: 30)
        XCTAssertEqual(expect.status, 0, expect.stderr)
        XCTAssertEqual(String(decoding: expect.stdout, as: UTF8.self), Self.body("/curl/expect", small))

        XCTAssertEqual(arrivedPaths(), paths + ["/curl/chunked", "/curl/expect"], "what reached the backend")
    }

    // MARK: Python requests

    func testPythonRequestsVerifiesTheCertificateAndKeepsOneConnectionPerSession() throws {
        let python = try requiredPythonModule("requests", package: "python3-requests")
        let admin = AdminClient(port: lb.adminPort)
        let connectionsBefore = try connectionsTotal(admin)
        let upload = TestData.noise(1 << 20)
        let uploadFile = certs.directory + "/upload-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: uploadFile) }
        try Data(upload).write(to: URL(fileURLWithPath: uploadFile))
        let script = """
            import sys, requests
            base, ca, upload = sys.argv[1:4]
            # verify= on each call: a Session's own verify loses to REQUESTS_CA_BUNDLE in the environment.
            with requests.Session() as s:
                for i in range(50):
                    r = s.get(f"{base}/requests/{i}", verify=ca, timeout=10)
                    assert (r.status_code, r.text) == (200, f"spy path=/requests/{i}\\n"), (r.status_code, r.text)
                with open(upload, "rb") as f:
                    r = s.post(f"{base}/requests/upload", data=f.read(), verify=ca, timeout=30)
                assert r.status_code == 200, r.status_code
                print(r.text, end="")
            # Verification is on: against the system's CAs the test CA's certificate must be refused.
            try:
                requests.get(f"{base}/requests/unverified", timeout=10)
                print("the certificate was accepted without the test CA")
            except requests.exceptions.SSLError:
                print("refused without the test CA")
            """
        let result = ManagedProcess.run(python, ["-c", script, base, certs.caCert, uploadFile], timeout: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(
            String(decoding: result.stdout, as: UTF8.self),
            Self.body("/requests/upload", upload) + "refused without the test CA\n")
        XCTAssertEqual(
            arrivedPaths(), (0..<50).map { "/requests/\($0)" } + ["/requests/upload"], "what reached the backend")
        // The Session's 51 requests on one connection, and the refused handshake on a second.
        try eventually(timeout: 5, "connections.total reaches \(connectionsBefore + 2)") {
            try connectionsTotal(admin) == connectionsBefore + 2
        }
    }

    // MARK: ab

    func testApacheBenchWithKeepAliveAndWithAHandshakePerRequestHasNoFailures() throws {
        let ab = try requiredTool("ab", package: "apache2-utils")
        let runs: [(path: String, requests: Int, flags: [String], keepAlive: Bool, protocolPrefix: String)] = [
            ("/ab/keep-alive", 1000, ["-k"], true, "TLSv1.3,"),
            // A TLS 1.2 handshake for every request.
            ("/ab/new-connections", 300, ["-f", "TLS1.2"], false, "TLSv1.2,"),
        ]
        for run in runs {
            let result = ManagedProcess.run(
                ab, run.flags + ["-n", String(run.requests), "-c", "8", "-s", "20", base + run.path], timeout: 120)
            let output = String(decoding: result.stdout, as: UTF8.self)
            XCTAssertEqual(result.status, 0, "\(run.path): \(output)\n\(result.stderr)")
            XCTAssertEqual(RealClientTests.abValue("Complete requests", in: output), run.requests, output)
            XCTAssertEqual(RealClientTests.abValue("Failed requests", in: output), 0, output)
            XCTAssertEqual(RealClientTests.abValue("Non-2xx responses", in: output) ?? 0, 0, output)
            XCTAssertEqual(
                RealClientTests.abValue("Keep-Alive requests", in: output) ?? 0, run.keepAlive ? run.requests : 0,
                output)
            XCTAssertEqual(
                RealClientTests.abValue("Document Length", in: output), Self.body(run.path, []).utf8.count, output)
            let tls = output.split(separator: "\n").first { $0.hasPrefix("SSL/TLS Protocol:") } ?? ""
            XCTAssertTrue(
                tls.dropFirst(17).trimmingCharacters(in: .whitespaces).hasPrefix(run.protocolPrefix), String(tls))
            if let rate = output.split(separator: "\n").first(where: { $0.hasPrefix("Requests per second") }) {
                print("ab \(run.flags.joined(separator: " ")) -n \(run.requests) -c 8 over HTTPS: \(rate)")
            }
        }
        let arrived = arrivedPaths()
        XCTAssertEqual(arrived.filter { $0 == "/ab/keep-alive" }.count, 1000, "keep-alive requests at the backend")
        XCTAssertEqual(arrived.filter { $0 == "/ab/new-connections" }.count, 300, "the others at the backend")
        XCTAssertEqual(arrived.count, 1300, "nothing else reached the backend")
    }

    // MARK: wrk

    func testWrkHasNoErrorsAndEveryRequestReachesTheBackend() throws {
        let wrk = try requiredTool("wrk", package: "wrk")
        let result = ManagedProcess.run(
            wrk, ["-t", "2", "-c", "8", "-d", "2s", "--timeout", "10s", base + "/wrk"], timeout: 60)
        let output = String(decoding: result.stdout, as: UTF8.self)
        XCTAssertEqual(result.status, 0, "\(output)\n\(result.stderr)")
        // "  12345 requests in 2.00s, 1.23MB read"; wrk adds "Socket errors: ..." and "Non-2xx or 3xx responses: N"
        // lines only when there were any.
        let summary = output.split(separator: "\n").first { $0.contains(" requests in ") } ?? ""
        let completed = Int(summary.split(separator: " ").first ?? "") ?? 0
        print("wrk -t 2 -c 8 -d 2s over HTTPS: \(summary.trimmingCharacters(in: .whitespaces))")
        XCTAssertGreaterThan(completed, 100, output)
        XCTAssertFalse(output.contains("Socket errors"), output)
        XCTAssertFalse(output.contains("Non-2xx or 3xx responses"), output)
        // wrk counts the answers it read; up to one request per connection may still have been on its way.
        let arrived = arrivedPaths()
        XCTAssertEqual(arrived.filter { $0 != "/wrk" }, [], "only wrk's requests reached the backend")
        XCTAssertTrue(
            (completed...(completed + 8)).contains(arrived.count),
            "wrk completed \(completed) requests and the backend saw \(arrived.count)")
    }

    // MARK: Helpers

    /// The backend's answer: a 200 naming the path, and the body's length and digest when there is one.
    private static func answer(_ request: [UInt8]) -> [UInt8] {
        guard let headEnd = HTTPWire.headEnd(in: request), let head = try? HTTPWire.parseHead(request[..<headEnd])
        else { return Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8) }
        let path = head.startLine.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
        var body = Array(request[headEnd...])
        if HTTPWire.transferCodings(head.fields).last == "chunked",
            case .complete(let decoded, _, _) = try? HTTPWire.decodeChunked(request, from: headEnd)
        {
            body = decoded
        }
        let text = Self.body(path, body)
        return Array("HTTP/1.1 200 OK\r\nContent-Length: \(text.utf8.count)\r\nX-Backend: spy\r\n\r\n\(text)".utf8)
    }

    private static func body(_ path: String, _ upload: [UInt8]) -> String {
        upload.isEmpty
            ? "spy path=\(path)\n" : "spy path=\(path) length=\(upload.count) sha256=\(Digest.sha256Hex(upload))\n"
    }

    /// The path of every request the backend received, in order.
    private func arrivedPaths() -> [String] {
        backend.requests.map { request in
            let line = request.prefix { $0 != 13 }
            return line.split(separator: 32).dropFirst().first.map { String(decoding: $0, as: UTF8.self) } ?? "?"
        }
    }

    private func connectionsTotal(_ admin: AdminClient) throws -> Int {
        let connections = try XCTUnwrap(try admin.call("GET", "/api/stats").json["connections"] as? [String: Any])
        return try XCTUnwrap(connections["total"] as? Int, "no connections.total in /api/stats")
    }
}

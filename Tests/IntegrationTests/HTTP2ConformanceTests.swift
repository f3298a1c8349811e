import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP/2 from clients against RFC 9113, through the real binary over h2c (prior knowledge) and TLS (ALPN `h2`).
/// The client is Python's sans-I/O `h2` library (`Tests/conformance/h2_conformance.py`), so hostile frame
/// sequences are scripted exactly; each scenario prints JSON that these tests assert on, together with what the
/// backends received (the HTTP/1.1 head a `SpyBackend` recorded, the concurrency an `InFlightBackend` measured),
/// lb's `/api/stats` counters and lb's CPU time and memory from /proc.
final class HTTP2ConformanceTests: IntegrationTestCase {
    private static let sharedCertificates = SharedTestCertificates { certs in
        try certs.issueLeaf("h2", dnsName: "localhost", ipAddress: "127.0.0.1", serial: TestCertificates.randomSerial())
    }

    override class func tearDown() {
        sharedCertificates.remove()
        super.tearDown()
    }

    // MARK: multiplexing

    func testAHundredConcurrentStreamsOfOneConnectionAreRoutedLikeHTTP11AcrossBackends() throws {
        let python = try h2Python()
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let lb = try startPlainAndTLS(backends: backends.map(\.address))
        let paths = (0..<100).map { "/c/\($0)" }
        // What HTTP/1.1 requests for the same paths get: the routing key is the path, whatever the protocol.
        let expected = try TrafficProbe.backends(port: lb.plain, paths: paths)
        XCTAssertGreaterThanOrEqual(Set(expected.values).count, 2, "the paths spread over the backends: \(expected)")

        for (transport, port, ca) in [("h2c", lb.plain, nil), ("tls", lb.tls, try certificates().caCert)] {
            let out = try H2Conformance.run(python, "concurrent", port: port, ca: ca, ["count": 100])
            XCTAssertEqual(out["max_open"] as? Int, 100, "\(transport): all streams open at once")
            XCTAssertTrue(out["goaway"] is NSNull, "\(transport): \(out)")
            let results = out["results"] as? [[String: Any]] ?? []
            XCTAssertEqual(results.count, 100)
            var seen: Set<String> = []
            for r in results {
                let path = r["path"] as? String ?? "?"
                XCTAssertEqual(r["status"] as? Int, 200, "\(transport) \(path): \(r)")
                let backend = expected[path] ?? "?"
                XCTAssertEqual(r["body"] as? String, "backend \(backend) path=\(path)\n", "\(transport) \(path)")
                seen.insert(backend)
            }
            XCTAssertGreaterThanOrEqual(seen.count, 2, "\(transport): one connection reached several backends")
        }
        let stats = try h2Stats(lb.server)
        XCTAssertEqual(stats["connections"] as? Int, 2, "\(stats)")
        XCTAssertEqual(stats["streams"] as? Int, 200, "\(stats)")
    }

    func testA64MiBUploadDoesNotHoldBackSmallStreamsOfTheSameConnection() throws {
        let python = try h2Python()
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let lb = try startPlainAndTLS(backends: [backend.address])
        let size = 64 << 20
        for (transport, port, ca) in [("h2c", lb.plain, nil), ("tls", lb.tls, try certificates().caCert)] {
            let out = try H2Conformance.run(
                python, "upload", port: port, ca: ca, ["size": size, "small": 20, "start_after": 2 << 20], timeout: 90)
            XCTAssertEqual(out["sent"] as? Int, size, transport)
            XCTAssertEqual(out["status"] as? Int, 200, "\(transport): \(out)")
            let digest = out["sha256"] as? String ?? "?"
            XCTAssertEqual(out["body"] as? String, "sha256=\(digest) length=\(size)\n", "\(transport): every byte")
            let small = out["small"] as? [[String: Any]] ?? []
            XCTAssertEqual(small.count, 20, "\(transport): \(out)")
            for (i, s) in small.enumerated() {
                XCTAssertEqual(s["status"] as? Int, 200, "\(transport): \(s)")
                XCTAssertEqual(s["body"] as? String, "backend b1 path=/small/\(i)\n", transport)
                XCTAssertEqual(s["upload_done"] as? Bool, false, "\(transport): small request \(i) done first: \(s)")
                XCTAssertLessThan(s["upload_sent"] as? Int ?? size, size, "\(transport): \(s)")
            }
        }
    }

    func testNghttpSeesTheSettingsChosenOnBothListeners() throws {
        let nghttp = try requiredTool("nghttp", package: "nghttp2-client")
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let lb = try startPlainAndTLS(
            backends: [backend.address], extra: ["limits": ["http2_max_concurrent_streams": 37]])
        for url in ["http://127.0.0.1:\(lb.plain)/settings", "https://127.0.0.1:\(lb.tls)/settings"] {
            let r = ManagedProcess.run(nghttp, ["-nv", "-t", "10", url], timeout: 20)
            let out = String(decoding: r.stdout, as: UTF8.self)
            XCTAssertEqual(r.status, 0, r.stderr + out)
            // lb's SETTINGS (the first frame nghttp receives): the configured stream limit, a 256 KiB stream
            // window, the head limit, no push.
            let lines = out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let first = lines.firstIndex { $0.contains("recv SETTINGS frame") && $0.contains("flags=0x00") }
            let entries = first.map { Array(lines[($0 + 2)...].prefix { $0.hasPrefix("[SETTINGS_") }) } ?? []
            for setting in [
                "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):37]", "[SETTINGS_INITIAL_WINDOW_SIZE(0x04):262144]",
                "[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):65536]", "[SETTINGS_ENABLE_PUSH(0x02):0]",
            ] {
                XCTAssertTrue(entries.contains(setting), "\(url): \(setting) in \(entries)\n\(out)")
            }
            // The connection window opened to 1 MiB (65,535 + 983,041).
            XCTAssertTrue(out.contains("recv WINDOW_UPDATE frame <length=4, flags=0x00, stream_id=0>\n"
                + "          (window_size_increment=983041)"), out)
            XCTAssertTrue(out.contains(":status: 200"), out)
        }
    }

    // MARK: translation to HTTP/1.1

    func testEachTranslationRuleRejectsOrRewritesTheRequest() throws {
        let python = try h2Python()
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse))
        let lb = try startPlainAndTLS(backends: [backend.address])
        for (transport, port, ca) in [("http", lb.plain, nil), ("https", lb.tls, try certificates().caCert)] {
            try assertTranslation(python, port: port, ca: ca, backend: backend, proto: transport)
        }
        let stats = try h2Stats(lb.server)
        let resets = stats["resets_sent"] as? [String: Int] ?? [:]
        XCTAssertEqual(resets["protocol_error"], 2 * Self.malformed.count, "each malformed one was reset: \(stats)")
    }

    /// The translation cases of h2_conformance.py that are malformed requests, and those lb forwards.
    private static let malformed = [
        "missing-method", "missing-scheme", "missing-path", "two-paths", "two-methods", "unknown-pseudo",
        "protocol-pseudo", "pseudo-after-regular", "scheme-ftp", "path-relative", "path-absolute-form",
        "path-empty", "path-asterisk-get", "method-not-token", "uppercase-name", "connection", "keep-alive",
        "proxy-connection", "transfer-encoding", "upgrade", "te-gzip", "value-cr", "value-lf", "value-crlf",
        "value-nul", "value-leading-space", "value-trailing-tab", "name-space", "cl-short", "cl-long",
        "cl-without-body", "cl-not-digits", "trailer-pseudo", "trailer-uppercase", "trailer-connection",
        "trailer-value-crlf", "trailer-without-end-stream",
    ]
    private static let forwarded = [
        "ok-cookies", "ok-te-trailers", "ok-options-asterisk", "ok-body-with-cl", "ok-body-without-cl",
        "ok-host-from-authority", "ok-host-field-only", "ok-https-scheme", "ok-expect", "ok-trailers",
    ]

    /// Runs the translation cases on `port` and checks the outcomes and what `backend` received from them.
    private func assertTranslation(
        _ python: String, port: Int, ca: String?, backend: SpyBackend, proto: String
    ) throws {
        let mark = backend.mark()
        let out = try H2Conformance.run(python, "translation", port: port, ca: ca)
        let results = out["results"] as? [String: String] ?? [:]
        // Well-formed HTTP/2 with no authority HTTP/1.1 can carry gets 400 (RFC 9110 §7.2: a missing or invalid Host).
        var expected: [String: String] = [:]
        for name in [
            "authority-userinfo", "authority-bad-char", "host-disagrees", "no-authority-no-host", "authority-empty",
            "host-empty",
        ] {
            expected[name] = "status=400"
        }
        for name in Self.malformed { expected[name] = "rst=1" }  // PROTOCOL_ERROR: a malformed request (§8.1.1)
        for name in Self.forwarded { expected[name] = "status=200" }
        XCTAssertEqual(results, expected, proto)

        // Only the forwarded requests reached the backend, each as one HTTP/1.1 request.
        let requests = backend.arrivals(since: mark).requests.map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(requests.count, Self.forwarded.count, "\(requests)")
        XCTAssertFalse(requests.contains { $0.contains("X-Injected") || $0.contains("\0") }, "\(requests)")
        func request(_ startLine: String) -> String {
            let found = requests.first { $0.hasPrefix(startLine + "\r\n") }
            XCTAssertNotNil(found, "no request starts with \(startLine): \(requests)")
            return found ?? ""
        }
        func fields(_ request: String) -> [String] {
            let head = request.components(separatedBy: "\r\n\r\n")[0]
            return head.components(separatedBy: "\r\n").dropFirst().map { $0 }
        }
        func named(_ request: String, _ name: String) -> [String] {
            fields(request).filter { $0.lowercased().hasPrefix(name.lowercased() + ":") }
        }

        let cookies = request("GET /t/cookies HTTP/1.1")
        XCTAssertEqual(named(cookies, "cookie"), ["Cookie: a=1; b=2; c=3"], "crumbs joined with \"; \" (§8.2.3)")
        XCTAssertEqual(named(cookies, "host"), ["Host: lb.test"])
        XCTAssertEqual(named(cookies, "accept"), ["accept: */*"])
        XCTAssertEqual(named(cookies, "x-forwarded-proto"), ["X-Forwarded-Proto: \(proto)"])
        XCTAssertFalse(fields(cookies).contains { $0.hasPrefix(":") }, "no pseudo-header is forwarded: \(cookies)")
        XCTAssertEqual(named(request("GET /t/te HTTP/1.1"), "te"), [], "te: trailers is hop-by-hop")
        XCTAssertEqual(named(request("OPTIONS * HTTP/1.1"), "host"), ["Host: lb.test"])

        let withLength = request("POST /t/cl HTTP/1.1")
        XCTAssertEqual(named(withLength, "content-length"), ["content-length: 5"])
        XCTAssertEqual(named(withLength, "transfer-encoding"), [])
        XCTAssertTrue(withLength.hasSuffix("\r\n\r\nhello"), withLength)
        let withoutLength = request("POST /t/chunked HTTP/1.1")
        XCTAssertEqual(named(withoutLength, "transfer-encoding"), ["Transfer-Encoding: chunked"], "re-framed")
        XCTAssertEqual(named(withoutLength, "content-length"), [])
        XCTAssertTrue(withoutLength.hasSuffix("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), withoutLength)

        XCTAssertEqual(named(request("GET /t/authority HTTP/1.1"), "host"), ["Host: lb.test:8443"])
        XCTAssertEqual(named(request("GET /t/host HTTP/1.1"), "host"), ["Host: h.test"])
        XCTAssertEqual(named(request("GET /t/https HTTP/1.1"), "host"), ["Host: lb.test"])
        let trailers = request("POST /t/trailers HTTP/1.1")
        XCTAssertTrue(trailers.hasSuffix("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "ended, not forwarded: \(trailers)")
        let expect = request("POST /t/expect HTTP/1.1")
        XCTAssertEqual(named(expect, "expect"), [], "no 100-continue handshake is asked of the backend")
        XCTAssertTrue(expect.hasSuffix("\r\n\r\nhi"), expect)
    }

    // MARK: responses

    func testBackendTrailersArriveAsATrailingHeadersFrameAndHopByHopFieldsAreDropped() throws {
        let python = try h2Python()
        let responses: [String: String] = [
            "/trailers": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                + "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nServer-Timing: db;dur=5\r\nKeep-Alive: timeout=1\r\n"
                + "Content-Length: 5\r\n\r\n",
            "/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "/hop": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
                + "X-Hop: 1\r\nX-Kept: 2\r\n\r\nhello",
        ]
        let backend = try SpyBackend(reply: .custom { request, _ in
            let line = String(decoding: request.prefix(while: { $0 != 13 }), as: UTF8.self)
            let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
            return Array((responses[path] ?? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").utf8)
        })
        let lb = try startPlainAndTLS(backends: [backend.address])
        for (transport, port, ca) in [("h2c", lb.plain, nil), ("tls", lb.tls, try certificates().caCert)] {
            let out = try H2Conformance.run(
                python, "responses", port: port, ca: ca, ["paths": "/trailers,/chunked,/hop"])
            func stream(_ path: String) -> [String: Any] { out[path] as? [String: Any] ?? [:] }
            func names(_ fields: Any?) -> [String] { (fields as? [[String]] ?? []).map { $0[0] } }

            let trailers = stream("/trailers")
            XCTAssertEqual(trailers["status"] as? Int, 200, "\(transport): \(trailers)")
            XCTAssertEqual(trailers["body"] as? String, "hello")
            XCTAssertEqual(
                trailers["trailers"] as? [[String]], [["x-checksum", "abc"], ["server-timing", "db;dur=5"]],
                "\(transport): the backend's trailers, without keep-alive and content-length: \(trailers)")
            XCTAssertEqual(names(trailers["headers"]), [":status", "trailer"], "\(trailers)")

            let chunked = stream("/chunked")
            XCTAssertEqual(chunked["body"] as? String, "hello")
            XCTAssertTrue(chunked["trailers"] is NSNull, "no trailers, no trailing HEADERS: \(chunked)")
            XCTAssertEqual(names(chunked["headers"]), [":status"], "transfer-encoding is not forwarded: \(chunked)")

            let hop = stream("/hop")
            XCTAssertEqual(hop["body"] as? String, "hello")
            XCTAssertEqual(names(hop["headers"]), [":status", "content-length", "x-kept"], "\(transport): \(hop)")
            XCTAssertTrue(hop["trailers"] is NSNull)
        }
    }

    func testExpect100ContinueIsAnsweredWithAnInterimHeadersOnceABackendIsReady() throws {
        let python = try h2Python()
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse))
        let lb = try startProxy(backends: [backend.address])
        let out = try H2Conformance.run(python, "expect", port: lb.proxyPort)
        let withBody = out["with-body"] as? [String: Any] ?? [:]
        XCTAssertEqual(withBody["informational"] as? [Int], [100], "\(out)")
        XCTAssertLessThan(withBody["waited"] as? Double ?? .infinity, 2, "the body was not held back: \(out)")
        XCTAssertEqual(withBody["status"] as? Int, 200, "\(out)")
        let withoutBody = out["without-body"] as? [String: Any] ?? [:]
        XCTAssertEqual(withoutBody["informational"] as? [Int], [], "no body, no 100: \(out)")
        XCTAssertEqual(withoutBody["status"] as? Int, 200, "\(out)")
        let requests = backend.requests.map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(requests.count, 2, "\(requests)")
        XCTAssertTrue(requests.first?.hasSuffix("\r\n\r\nbody") == true, "\(requests)")
        XCTAssertFalse(requests.contains { $0.lowercased().contains("\r\nexpect:") }, "lb answers it itself")
    }

    // MARK: floods

    func testRapidResetEndsInGoawayWithCPUAndBackendConcurrencyBounded() throws {
        let python = try h2Python()
        let limit = 16
        let backend = try InFlightBackend(holdFor: 1.0)
        let lb = try startProxy(
            backends: [backend.address], settings: ["limits": ["http2_max_concurrent_streams": limit]])
        // The instrument first: `limit` streams held by the backend at once are all seen in flight together, and
        // the streams opened beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused, to be retried (RFC 9113 §5.1.2).
        let warm = try H2Conformance.run(python, "concurrent", port: lb.proxyPort, ["count": limit + 4, "early": 1])
        let outcomes = (warm["results"] as? [[String: Any]] ?? []).map { ($0["body"] as? String ?? "", $0["reset"]) }
        XCTAssertEqual(outcomes.filter { $0.0 == "ok" }.count, limit, "\(warm)")
        XCTAssertEqual(outcomes.filter { $0.1 as? Int == 7 }.count, 4, "REFUSED_STREAM beyond the limit: \(warm)")
        XCTAssertEqual(backend.counts.maxInFlightRequests, limit, "\(backend.counts)")

        let cpuBefore = try cpuSeconds(pid: lb.process.pid)
        let before = backend.counts
        let out = try H2Conformance.run(python, "rapidreset", port: lb.proxyPort, ["count": 10_000])
        let cpu = try cpuSeconds(pid: lb.process.pid) - cpuBefore
        let goaway = out["goaway"] as? [String: Int]
        XCTAssertEqual(goaway?["error"], 11, "GOAWAY(ENHANCE_YOUR_CALM): \(out)")
        XCTAssertLessThan(goaway?["last_stream"] ?? .max, 2 * 10_000 - 1, "lb stopped before the end: \(out)")
        XCTAssertEqual(out["closed"] as? Bool, true, "\(out)")
        XCTAssertLessThan(cpu, 2.0, "lb's CPU time for 10,000 HEADERS+RST_STREAM pairs")
        let after = backend.counts
        XCTAssertLessThanOrEqual(after.maxInFlightRequests, limit, "\(after)")
        XCTAssertLessThanOrEqual(after.maxOpenConnections, limit, "\(after)")
        let stats = try h2Stats(lb)
        let goaways = stats["goaways_sent"] as? [String: Int] ?? [:]
        let calm = ["reset_flood", "refused_stream_flood", "library_limit"].reduce(0) { $0 + (goaways[$1] ?? 0) }
        XCTAssertEqual(calm, 1, "\(stats)")
        print("rapid reset: \(out); lb CPU \(cpu) s; backend requests \(after.requests - before.requests), "
            + "connections \(after.connections - before.connections)")

        let again = try H2Conformance.run(python, "concurrent", port: lb.proxyPort, ["count": 2])
        XCTAssertEqual((again["results"] as? [[String: Any]])?.compactMap { $0["body"] as? String }, ["ok", "ok"])
    }

    func testAContinuationFloodIsCutAfterAFewFramesWithMemoryBounded() throws {
        let python = try h2Python()
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse))
        let lb = try startProxy(backends: [backend.address])
        let rssBefore = try rssKiB(pid: lb.process.pid)
        // 16 MiB of 1 KiB fragments, then 1.8 MB of empty ones: a header block that never ends.
        for (count, size) in [(16_384, 1024), (200_000, 0)] {
            let bytesBefore = try bytesIn(lb)
            let out = try H2Conformance.run(
                python, "continuation", port: lb.proxyPort, ["count": count, "size": size])
            XCTAssertEqual(out["closed"] as? Bool, true, "\(out)")
            XCTAssertLessThan(out["seconds"] as? Double ?? .infinity, 5, "\(out)")
            XCTAssertEqual((out["goaway"] as? [String: Int])?["error"], 11, "GOAWAY(ENHANCE_YOUR_CALM): \(out)")
            let read = try bytesIn(lb) - bytesBefore
            XCTAssertLessThan(read, 256 * 1024, "lb stopped reading the flood of \(size)-byte fragments early: \(out)")
        }
        XCTAssertLessThan(try rssKiB(pid: lb.process.pid) - rssBefore, 16 * 1024, "lb's memory stays bounded")
        XCTAssertEqual(backend.requestCount, 0, "no flooded header block became a request")
        let stats = try h2Stats(lb)
        XCTAssertEqual((stats["goaways_sent"] as? [String: Any])?["continuation_flood"] as? Int, 2, "\(stats)")
        let after = try H2Conformance.run(python, "concurrent", port: lb.proxyPort, ["count": 1])
        XCTAssertEqual((after["results"] as? [[String: Any]])?.first?["body"] as? String, "spy", "lb still serves")
    }

    // MARK: shutdown

    func testSigtermSendsGoawayAndTheInFlightStreamsComplete() throws {
        let python = try h2Python()
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse), replyDelay: 1.0)
        let certs = try certificates()
        let lb = try startPlainAndTLS(backends: [backend.address], extra: ["timeouts": ["shutdown_grace": "5s"]])
        let out = try H2Conformance.run(
            python, "sigterm", port: lb.tls, ca: certs.caCert,
            ["count": 5, "admin": lb.server.adminPort, "pid": lb.server.process.pid])
        let goaway = out["goaway"] as? [String: Int]
        XCTAssertEqual(goaway?["error"], 0, "GOAWAY(NO_ERROR): \(out)")
        XCTAssertEqual(goaway?["last_stream"], 9, "the five streams (1...9) are the last lb processes: \(out)")
        XCTAssertEqual(out["done_before_goaway"] as? Int, 0, "GOAWAY came while all five were in flight: \(out)")
        XCTAssertEqual(out["results"] as? [String], Array(repeating: "status=200 spy", count: 5), "\(out)")
        XCTAssertLessThan(out["completed_after"] as? Double ?? .infinity, 5, "within the grace period: \(out)")
        XCTAssertEqual(lb.server.process.waitForExit(timeout: 10), 0, "lb exits once the streams are done")
    }

    // MARK: helpers

    /// A python3 with the `h2` module (Debian python3-h2): skips without one, fails under CI.
    private func h2Python() throws -> String { try requiredPythonModule("h2", package: "python3-h2") }

    private func certificates() throws -> TestCertificates {
        _ = try requiredTool("openssl", package: "openssl")
        return try Self.sharedCertificates.get()
    }

    /// lb with a plain listener (h2c by prior knowledge) and a TLS one (ALPN h2), both on port 0.
    private func startPlainAndTLS(backends: [String], extra: [String: Any] = [:]) throws
        -> (server: LBServerProcess, plain: Int, tls: Int)
    {
        let certs = try certificates()
        let tls: [String: Any] = ["certificates": [["cert": certs.cert("h2"), "key": certs.key("h2")]]]
        var settings = extra
        settings["listeners"] = [["address": "127.0.0.1:0"], ["address": "127.0.0.1:0", "tls": tls]]
        let lb = try LBBinaries.startServer(backends: backends, configFile: try writeConfigFile(settings), listen: nil)
        let tlsPort = try lb.process.waitForListening(kind: .proxyTLS)
        return (lb, lb.proxyPort, tlsPort)
    }

    private func h2Stats(_ lb: LBServerProcess) throws -> [String: Any] {
        let protocols = try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json["protocols"]
        return (protocols as? [String: Any])?["h2"] as? [String: Any] ?? [:]
    }

    private func bytesIn(_ lb: LBServerProcess) throws -> Int {
        let bytes = try AdminClient(port: lb.adminPort).call("GET", "/api/stats").json["bytes"]
        return try XCTUnwrap((bytes as? [String: Any])?["in"] as? Int)
    }
}

/// Runs a scenario of `Tests/conformance/h2_conformance.py` and returns the JSON object it printed.
enum H2Conformance {
    static let script = LBBinaries.packageRoot.appendingPathComponent("Tests/conformance/h2_conformance.py").path

    static func run(
        _ python: String, _ scenario: String, port: Int, ca: String? = nil, _ arguments: [String: Any] = [:],
        timeout: TimeInterval = 60
    ) throws -> [String: Any] {
        var argv = [script, scenario, String(port)]
        if let ca { argv += ["--tls", ca] }
        for (key, value) in arguments.sorted(by: { $0.key < $1.key }) { argv += ["--arg", "\(key)=\(value)"] }
        let r = ManagedProcess.run(python, argv, timeout: timeout)
        let text = String(decoding: r.stdout, as: UTF8.self)
        guard r.status == 0, let object = try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw HarnessError.malformedResponse(
                reason: "h2_conformance.py \(scenario) exited \(r.status): \(r.stderr)", raw: Array(text.utf8))
        }
        return object
    }
}

import Foundation
import XCTest

/// HTTP/2 from clients with real clients: curl (prior knowledge on plain listeners, ALPN on TLS ones), nghttp (two
/// streams on one connection), h2load (many multiplexed streams), and a raw Python client (`H2RawClient`) for
/// malformed requests, a stream whose window stays closed, a Rapid Reset burst and a drain. Backends are HTTP/1.1:
/// each stream reaches them as an ordinary request over the upstream pool.
final class HTTP2Tests: IntegrationTestCase {
    // MARK: negotiation and translation

    func testPriorKnowledgeStreamReachesTheBackendAsHTTP11AndIsLoggedAsHTTP2() throws {
        let curl = try requiredTool("curl", package: "curl")
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse))
        let log = NSTemporaryDirectory() + "lb-h2-access-\(UUID().uuidString).log"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: log) }
        let lb = try startProxy(backends: [backend.address], settings: ["access_log": ["format": "common", "path": log]])
        let base = "http://127.0.0.1:\(lb.proxyPort)"

        let h2 = ManagedProcess.run(
            curl, ["-sS", "--max-time", "10", "--http2-prior-knowledge", "-H", "Cookie: k=v", "-w", " %{http_version}",
                   base + "/h2/one?q=1"], timeout: 20)
        XCTAssertEqual(h2.status, 0, h2.stderr)
        XCTAssertEqual(String(decoding: h2.stdout, as: UTF8.self), "spy 2")
        // curl --http2 on plain HTTP asks for an h2c upgrade, which lb does not do: the answer comes as HTTP/1.1.
        let upgrade = ManagedProcess.run(
            curl, ["-sS", "--max-time", "10", "--http2", "-w", " %{http_version}", base + "/h2/two"], timeout: 20)
        XCTAssertEqual(upgrade.status, 0, upgrade.stderr)
        XCTAssertEqual(String(decoding: upgrade.stdout, as: UTF8.self), "spy 1.1")

        let first = String(decoding: try XCTUnwrap(backend.requests.first), as: UTF8.self)
        XCTAssertTrue(first.hasPrefix("GET /h2/one?q=1 HTTP/1.1\r\nHost: 127.0.0.1:\(lb.proxyPort)\r\n"), first)
        XCTAssertTrue(first.contains("\r\ncookie: k=v\r\n") || first.contains("\r\nCookie: k=v\r\n"), first)
        XCTAssertTrue(first.contains("X-Forwarded-Proto: http\r\n"), first)
        XCTAssertFalse(first.contains(":path") || first.contains(":authority"), first)
        try eventually(timeout: 5, "the access log has both lines") {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.contains("\"GET /h2/one?q=1 HTTP/2.0\" 200") && text.contains("\"GET /h2/two HTTP/1.1\" 200")
        }
    }

    func testTLSListenerPrefersH2ByALPNUnlessTurnedOff() throws {
        let curl = try requiredTool("curl", package: "curl")
        let h2load = try requiredTool("h2load", package: "nghttp2-client")
        _ = try requiredTool("openssl", package: "openssl")
        let certs = try TestCertificates.make()
        addTeardownBlock { certs.remove() }
        try certs.issueLeaf("h2", dnsName: "localhost", ipAddress: "127.0.0.1", serial: TestCertificates.randomSerial())
        let tls: [String: Any] = ["certificates": [["cert": certs.cert("h2"), "key": certs.key("h2")]]]
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let config = try writeConfigFile([
            "listeners": [
                ["address": "127.0.0.1:0", "tls": tls], ["address": "127.0.0.1:0", "tls": tls, "http2": false],
            ],
        ])
        let lb = try LBBinaries.startServer(
            backends: [backend.address], configFile: config, listen: nil, proxyKind: .proxyTLS)
        let ports = ManagedProcess.listeningPorts(in: lb.process.log, kind: .proxyTLS)
        XCTAssertEqual(ports.count, 2, lb.process.log)
        guard ports.count == 2 else { return }
        func version(_ port: Int) -> String {
            let r = ManagedProcess.run(
                curl, ["-sS", "--max-time", "10", "--http2", "--cacert", certs.caCert, "-o", "/dev/null", "-w",
                       "%{http_version}", "https://127.0.0.1:\(port)/alpn"], timeout: 20)
            XCTAssertEqual(r.status, 0, r.stderr)
            return String(decoding: r.stdout, as: UTF8.self)
        }
        XCTAssertEqual(version(ports[0]), "2", "h2 is offered first and chosen")
        XCTAssertEqual(version(ports[1]), "1.1", "http2: false offers only HTTP/1.x")

        let load = ManagedProcess.run(
            h2load, ["-n", "600", "-c", "3", "-m", "10", "https://127.0.0.1:\(ports[0])/load"], timeout: 60)
        let out = String(decoding: load.stdout, as: UTF8.self)
        XCTAssertEqual(load.status, 0, load.stderr)
        XCTAssertTrue(out.contains("Application protocol: h2"), out)
        XCTAssertTrue(out.contains("600 succeeded, 0 failed, 0 errored"), out)
    }

    // MARK: routing per stream

    func testTwoStreamsOfOneConnectionGoToTwoBackends() throws {
        let nghttp = try requiredTool("nghttp", package: "nghttp2-client")
        let (_, lb) = try startCluster(backends: 2)
        let routes = try TrafficProbe.backends(port: lb.proxyPort, paths: TrafficProbe.paths(40, prefix: "/route"))
        let byBackend = Dictionary(grouping: routes.keys.sorted(), by: { routes[$0]! })
        XCTAssertEqual(byBackend.count, 2, "\(routes)")
        guard byBackend.count == 2, let a = byBackend["b1"]?.first, let b = byBackend["b2"]?.first else { return }
        let admin = AdminClient(port: lb.adminPort)
        let before = try h2Stats(admin)

        let base = "http://127.0.0.1:\(lb.proxyPort)"
        let r = ManagedProcess.run(nghttp, ["-t", "10", base + a, base + b], timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = Set(String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init))
        XCTAssertEqual(lines, ["backend b1 path=\(a)", "backend b2 path=\(b)"])
        try eventually(timeout: 5, "one HTTP/2 connection carried both streams") {
            let now = try h2Stats(admin)
            return (now["connections"] as? Int) == (before["connections"] as? Int ?? 0) + 1
                && (now["streams"] as? Int) == (before["streams"] as? Int ?? 0) + 2
        }
    }

    // MARK: validation

    func testMalformedRequestsAreResetAndUnforwardableOnesGet400() throws {
        let python = try requiredTool("python3", package: "python3")
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse))
        let lb = try startProxy(backends: [backend.address])
        let r = H2RawClient.run(python: python, scenario: "validate", port: lb.proxyPort)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, """
            valid status=200
            uppercase-name rst=1
            connection-field rst=1
            transfer-encoding rst=1
            te-gzip rst=1
            te-trailers status=200
            missing-path rst=1
            missing-method rst=1
            two-methods rst=1
            scheme-ftp rst=1
            relative-path rst=1
            asterisk-get rst=1
            pseudo-after-regular rst=1
            userinfo-authority status=400
            host-mismatch status=400
            no-authority-no-host status=400
            host-only status=200
            method-not-token rst=1
            content-length-short rst=1

            """)
        let requests = backend.requests.map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(requests.count, 3, "only the valid requests reach the backend: \(requests)")
        XCTAssertTrue(requests.first?.contains("\r\nCookie: a=1; b=2\r\n") == true, "cookie crumbs joined: \(requests)")
        XCTAssertTrue(requests.allSatisfy { !$0.lowercased().contains("\r\nte:") }, "te is not forwarded: \(requests)")
        XCTAssertTrue(requests.allSatisfy { $0.contains("\r\nHost: lb.test\r\n") }, "\(requests)")
        let stats = try h2Stats(AdminClient(port: lb.adminPort))
        XCTAssertEqual((stats["resets_sent"] as? [String: Any])?["protocol_error"] as? Int, 13, "\(stats)")
    }

    // MARK: flow control

    func testLargeUploadAndDownloadKeepTheirDigests() throws {
        let curl = try requiredTool("curl", package: "curl")
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let lb = try startProxy(backends: [backend.address])
        let base = "http://127.0.0.1:\(lb.proxyPort)"
        let upload = TestData.noise(6_000_000)
        let file = NSTemporaryDirectory() + "lb-h2-upload-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: file) }
        try Data(upload).write(to: URL(fileURLWithPath: file))
        let echo = ManagedProcess.run(
            curl, ["-sS", "--max-time", "30", "--http2-prior-knowledge", "--data-binary", "@" + file, base + "/echo"],
            timeout: 40)
        XCTAssertEqual(echo.status, 0, echo.stderr)
        XCTAssertEqual(echo.stdout.count, upload.count)
        XCTAssertTrue(Array(echo.stdout) == upload, "the echoed upload is byte for byte the same")

        let size = 12_000_000
        let download = ManagedProcess.run(
            curl, ["-sS", "--max-time", "30", "--http2-prior-knowledge", base + "/bytes?size=\(size)"], timeout: 40)
        XCTAssertEqual(download.status, 0, download.stderr)
        XCTAssertEqual(download.stdout.count, size)
        XCTAssertTrue(download.stdout.enumerated().allSatisfy { $0.element == UInt8($0.offset % 251) })
    }

    func testAStreamWhoseWindowStaysClosedDoesNotStallAnother() throws {
        let python = try requiredTool("python3", package: "python3")
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let lb = try startProxy(backends: [backend.address])
        let r = H2RawClient.run(python: python, scenario: "slowreader", port: lb.proxyPort, ["3000000"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, """
            fast stream done: backend b1 path=/fast
            slow stream held to its window: True
            slow stream complete: 3000000 True

            """)
    }

    // MARK: limits

    func testRapidResetIsBoundedAndTheConnectionToldToCalmDown() throws {
        let python = try requiredTool("python3", package: "python3")
        let curl = try requiredTool("curl", package: "curl")
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse))
        let lb = try startProxy(backends: [backend.address])
        let r = H2RawClient.run(python: python, scenario: "rapidreset", port: lb.proxyPort, ["2000"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "goaway 11 closed\n", "GOAWAY(ENHANCE_YOUR_CALM), then the connection closes")
        let admin = AdminClient(port: lb.adminPort)
        let stats = try h2Stats(admin)
        let goaways = stats["goaways_sent"] as? [String: Int] ?? [:]
        let calm = ["reset_flood", "refused_stream_flood", "library_limit"].reduce(0) { $0 + (goaways[$1] ?? 0) }
        XCTAssertEqual(calm, 1, "\(stats)")
        let started = stats["streams"] as? Int ?? -1
        XCTAssertLessThanOrEqual(started, 400, "2000 resets started at most a bounded number of exchanges: \(stats)")
        XCTAssertLessThanOrEqual(backend.requests.count, started)
        // The proxy still serves.
        let after = ManagedProcess.run(
            curl, ["-sS", "--max-time", "10", "--http2-prior-knowledge", "http://127.0.0.1:\(lb.proxyPort)/after"],
            timeout: 20)
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertEqual(String(decoding: after.stdout, as: UTF8.self), "spy")
    }

    func testH2loadMultiplexesManyStreamsAndTheyAreCounted() throws {
        let h2load = try requiredTool("h2load", package: "nghttp2-client")
        let (_, lb) = try startCluster(backends: 2)
        let load = ManagedProcess.run(
            h2load, ["-n", "2000", "-c", "4", "-m", "20", "http://127.0.0.1:\(lb.proxyPort)/many"], timeout: 60)
        let out = String(decoding: load.stdout, as: UTF8.self)
        XCTAssertEqual(load.status, 0, load.stderr)
        XCTAssertTrue(out.contains("2000 succeeded, 0 failed, 0 errored"), out)
        XCTAssertTrue(out.contains("2000 2xx"), out)
        let admin = AdminClient(port: lb.adminPort)
        let stats = try h2Stats(admin)
        XCTAssertEqual(stats["connections"] as? Int, 4, "\(stats)")
        XCTAssertEqual(stats["streams"] as? Int, 2000, "\(stats)")
        let metrics = try admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("lb_protocol_requests_total{protocol=\"h2\"} 2000"), metrics)
        XCTAssertTrue(metrics.contains("lb_protocol_connections_total{protocol=\"h2\"} 4"), metrics)
    }

    // MARK: graceful shutdown

    func testDrainSendsGoawayWithTheLastStreamAndFinishesIt() throws {
        let python = try requiredTool("python3", package: "python3")
        let backend = try SpyBackend(reply: .perRequest(SpyBackend.okResponse), replyDelay: 1.0)
        let lb = try startProxy(backends: [backend.address])
        let r = H2RawClient.run(
            python: python, scenario: "drain", port: lb.proxyPort, [String(lb.adminPort), String(lb.process.pid)])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, """
            goaway last=1 error=0
            stream 1 status=200
            stream 1 end
            closed

            """)
        XCTAssertNotNil(lb.process.waitForExit(timeout: 10), "lb exits once the stream is done")
    }

    // MARK: helpers

    private func h2Stats(_ admin: AdminClient) throws -> [String: Any] {
        let protocols = try admin.call("GET", "/api/stats").json["protocols"] as? [String: Any]
        return protocols?["h2"] as? [String: Any] ?? [:]
    }
}

extension ManagedProcess {
    /// Every listener port of `kind` in `log`, in the order announced (complete lines only).
    static func listeningPorts(in log: String, kind: ListenerKind) -> [Int] {
        var lines = log.split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()
        return lines.compactMap { listeningPort(in: String($0) + "\n", kind: kind) }
    }
}

import Foundation
import XCTest

/// Real HTTP clients through the proxy and the demo backend: curl (HTTP/1.1, HTTP/1.0, chunked upload from stdin,
/// `Expect: 100-continue`), ApacheBench with HTTP/1.0 keep-alive, and Python `requests` with a keep-alive Session.
/// A missing tool skips its test with the package that provides it.
final class RealClientTests: IntegrationTestCase {
    private var proxy: LBServerProcess!
    private var base: String { "http://127.0.0.1:\(proxy.proxyPort)" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        proxy = try startProxy(backends: [backend.address])
    }

    // MARK: curl

    func testCurlGetsOverHTTP11AndHTTP10() throws {
        try requireTool("curl", package: "curl")
        for flags in [[], ["--http1.0"]] {
            let result = ManagedProcess.run(
                "curl",
                ["-sS", "--max-time", "10", "-w", "\n%{http_code} %{http_version}"] + flags
                    + ["\(base)/hello"], timeout: 20)
            let output = String(decoding: result.stdout, as: UTF8.self)
            XCTAssertEqual(result.status, 0, "curl \(flags): \(result.stderr)")
            XCTAssertTrue(output.hasPrefix("backend b1 path=/hello\n"), "curl \(flags): \(output)")
            XCTAssertTrue(output.hasSuffix("\n200 1.1") || output.hasSuffix("\n200 1.0"), "curl \(flags): \(output)")
        }
    }

    func testCurlChunkedUploadFromStdinKeepsTheBodyIntact() throws {
        try requireTool("curl", package: "curl")
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let result = ManagedProcess.run(
            "curl",
            ["-sS", "--max-time", "20", "-T", "-", "-H", "Transfer-Encoding: chunked", "\(base)/digest"],
            input: Data(body), timeout: 30)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(
            String(decoding: result.stdout, as: UTF8.self),
            "sha256=\(Digest.sha256Hex(body)) length=\(body.count)\n")
    }

    /// curl sends the head, waits up to 1 s (`--expect100-timeout`) for `100 Continue`, then sends the body anyway;
    /// the answer must be right either way. The elapsed time is printed: about 1 s means no one sent 100 Continue
    /// (see `StreamingTests.testExpect100ContinueGetsInterimResponseBeforeBody`).
    func testCurlExpect100ContinueUploadSucceeds() throws {
        try requireTool("curl", package: "curl")
        let body = (0..<4_096).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let started = Date()
        let result = ManagedProcess.run(
            "curl",
            ["-sS", "--max-time", "10", "-H", "Expect: 100-continue", "--data-binary", "@-", "\(base)/digest"],
            input: Data(body), timeout: 20)
        print("curl with Expect: 100-continue took \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(
            String(decoding: result.stdout, as: UTF8.self),
            "sha256=\(Digest.sha256Hex(body)) length=\(body.count)\n")
    }

    // MARK: ab

    func testApacheBenchHTTP10KeepAliveHasNoFailures() throws {
        try requireTool("ab", package: "apache2-utils")
        let result = ManagedProcess.run("ab", ["-k", "-n", "2000", "-c", "8", "-s", "10", "\(base)/ab"], timeout: 60)
        let output = String(decoding: result.stdout, as: UTF8.self)
        XCTAssertEqual(result.status, 0, "\(output)\n\(result.stderr)")
        XCTAssertEqual(Self.abValue("Complete requests", in: output), 2000, output)
        XCTAssertEqual(Self.abValue("Failed requests", in: output), 0, output)
        XCTAssertEqual(Self.abValue("Non-2xx responses", in: output) ?? 0, 0, output)
        XCTAssertEqual(Self.abValue("Keep-Alive requests", in: output), 2000, output)
        if let rate = output.split(separator: "\n").first(where: { $0.hasPrefix("Requests per second") }) {
            print("ab -k -n 2000 -c 8: \(rate)")
        }
    }

    /// The integer after `label:` in ab's report, e.g. "Failed requests:        0".
    static func abValue(_ label: String, in output: String) -> Int? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(label + ":") }) else { return nil }
        return line.dropFirst(label.count + 1).split(separator: " ").first.flatMap { Int($0) }
    }

    // MARK: Python requests

    func testPythonRequestsSessionKeepAliveAndLargePost() throws {
        try requireTool("python3", package: "python3")
        let check = ManagedProcess.run("python3", ["-c", "import requests"], timeout: 20)
        guard check.status == 0 else { throw XCTSkip("Python requests is not installed (pip install requests)") }
        let script = """
            import hashlib, sys, requests
            base = sys.argv[1]
            s = requests.Session()
            connections = set()
            for i in range(50):
                r = s.get(f"{base}/item/{i}", timeout=10)
                assert r.status_code == 200, r.status_code
                assert r.text == f"backend b1 path=/item/{i}\\n", r.text
                connections.add(r.headers["X-Connection"])
            body = bytes((i * 7 + 3) % 256 for i in range(1 << 20))
            r = s.post(f"{base}/digest", data=body, timeout=30)
            assert r.status_code == 200, r.status_code
            expected = f"sha256={hashlib.sha256(body).hexdigest()} length={len(body)}\\n"
            assert r.text == expected, (r.text, expected)
            print(f"ok: 50 GETs over keep-alive, upstream connections {sorted(connections)}; 1 MiB POST digest ok")
            """
        let result = ManagedProcess.run("python3", ["-c", script, base], timeout: 60)
        let output = String(decoding: result.stdout, as: UTF8.self)
        print(output, terminator: "")
        XCTAssertEqual(result.status, 0, "\(output)\n\(result.stderr)")
        XCTAssertTrue(output.hasPrefix("ok:"), output)
    }

    // MARK: Helpers

    private func requireTool(_ name: String, package: String) throws {
        guard ManagedProcess.resolveExecutable(name) != nil else {
            throw XCTSkip("\(name) is not installed (Debian package \(package))")
        }
    }
}

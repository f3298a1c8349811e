import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Message bodies and connection semantics through the real proxy and the demo backend (bodies follow the demo
/// backend's `i % 251` pattern): large transfers stream with bounded memory, pipelined requests are answered in
/// order, every response framing (Content-Length, chunked, close-delimited, HEAD, 101 upgrade, 100-continue) arrives
/// intact and leaves the client connection in the right state.
final class StreamingTests: IntegrationTestCase {
    private var proxy: LBServerProcess!

    override func setUpWithError() throws {
        try super.setUpWithError()
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        proxy = try startProxy(backends: [backend.address])
    }

    // MARK: Large bodies, bounded memory

    func testLargeDownloadAndUploadStreamIntactWithBoundedProxyMemory() throws {
        let pid = proxy.process.pid
        let connection = try RawHTTPConnection(port: proxy.proxyPort, timeout: 120)
        try connection.send("GET /bytes?size=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().body.count, 1000)
        let baseline = try peakRssKiB(pid: pid)

        let downloadSize = 64 << 20
        var started = Date()
        try connection.send("GET /bytes?size=\(downloadSize) HTTP/1.1\r\nHost: a\r\n\r\n")
        let download = try connection.readResponse()
        let downloadSeconds = Date().timeIntervalSince(started)
        XCTAssertEqual(download.status, 200)
        XCTAssertEqual(download.header("Content-Length"), String(downloadSize))
        XCTAssertEqual(download.body.count, downloadSize)
        XCTAssertTrue(Self.matchesDemoPattern(download.body), "the 64 MiB body differs from the backend's pattern")
        let afterDownload = try peakRssKiB(pid: pid)

        let uploadSize = 16 << 20
        let upload = TestData.noise(uploadSize)
        let expected = ManagedProcess.run("sha256sum", [], input: Data(upload), timeout: 30)
        XCTAssertEqual(expected.status, 0, expected.stderr)
        let expectedHex = String(decoding: expected.stdout.prefix(64), as: UTF8.self)
        started = Date()
        try connection.send(
            Array("POST /digest HTTP/1.1\r\nHost: a\r\nContent-Length: \(uploadSize)\r\n\r\n".utf8) + upload)
        let digest = try connection.readResponse()
        let uploadSeconds = Date().timeIntervalSince(started)
        XCTAssertEqual(digest.bodyString, "sha256=\(expectedHex) length=\(uploadSize)\n")
        let afterUpload = try peakRssKiB(pid: pid)

        print(
            "proxy VmHWM: baseline \(baseline) KiB, after 64 MiB download \(afterDownload) KiB "
                + "(\(String(format: "%.2f", downloadSeconds)) s), after 16 MiB upload \(afterUpload) KiB "
                + "(\(String(format: "%.2f", uploadSeconds)) s); growth \(afterUpload - baseline) KiB")
        if Sanitizer.measuresResources {
            XCTAssertLessThan(afterUpload - baseline, 48 << 10, "the proxy buffered bodies instead of streaming them")
        }
    }

    // MARK: Pipelining and framings

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send(
            "GET /bytes?size=10 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "POST /digest HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /chunked?size=300&chunk=7 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "HEAD /bytes?size=50 HTTP/1.1\r\nHost: a\r\n\r\n"
                + "GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\n")
        let first = try connection.readResponse()
        XCTAssertEqual(first.body, Self.demoPattern(10))
        let second = try connection.readResponse()
        XCTAssertEqual(second.bodyString, "sha256=\(Digest.sha256Hex(Array("hello".utf8))) length=5\n")
        let third = try connection.readResponse()
        XCTAssertEqual(third.body, Self.demoPattern(300))
        let fourth = try connection.readResponse(headRequest: true)
        XCTAssertEqual(fourth.header("Content-Length"), "50")
        let fifth = try connection.readResponse()
        XCTAssertEqual(fifth.status, 404)
        XCTAssertEqual(fifth.bodyString, "status 404 from b1\n")
        XCTAssertTrue(connection.unconsumedBytes.isEmpty, connection.unconsumedBytes.debugText)
    }

    func testChunkedResponseArrivesIntact() throws {
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("GET /chunked?size=200000&chunk=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        let response = try connection.readResponse()
        XCTAssertEqual(response.header("Transfer-Encoding"), "chunked")
        XCTAssertNil(response.header("Content-Length"))
        XCTAssertEqual(response.body, Self.demoPattern(200_000))
        try connection.send("GET /bytes?size=3 HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().body, Self.demoPattern(3), "keep-alive after a chunked response")
    }

    /// RFC 9112 §6.3 / §7: a close-delimited response is re-framed as chunked for an HTTP/1.1 client (which keeps
    /// its connection), and stays close-delimited for an HTTP/1.0 client (whose connection then closes).
    func testCloseDelimitedResponseIsRechunkedFor11AndClosesFor10() throws {
        let client11 = try RawHTTPConnection(port: proxy.proxyPort)
        try client11.send("GET /close?size=5000 HTTP/1.1\r\nHost: a\r\n\r\n")
        let rechunked = try client11.readResponse()
        XCTAssertEqual(rechunked.header("Transfer-Encoding"), "chunked")
        XCTAssertEqual(rechunked.body, Self.demoPattern(5000))
        // An HTTP/1.1 client keeps its connection: the next request is answered on it.
        try client11.send("GET /bytes?size=4 HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(try client11.readResponse().body, Self.demoPattern(4))

        let client10 = try RawHTTPConnection(port: proxy.proxyPort)
        try client10.send("GET /close?size=5000 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        let delimited = try client10.readResponse()
        XCTAssertNil(delimited.header("Transfer-Encoding"), "no chunked coding for an HTTP/1.0 client")
        XCTAssertEqual(delimited.body, Self.demoPattern(5000))
        XCTAssertTrue(client10.isClosedByPeer(timeout: 2))
    }

    func testHeadWithContentLengthDoesNotHangAndKeepsTheConnection() throws {
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send("HEAD /bytes?size=1000 HTTP/1.1\r\nHost: a\r\n\r\n")
        let head = try connection.readResponse(headRequest: true, timeout: 3)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "1000", "HEAD keeps the Content-Length a GET would get")
        XCTAssertTrue(head.body.isEmpty)
        try connection.send("GET /bytes?size=10 HTTP/1.1\r\nHost: a\r\n\r\n")
        let next = try connection.readResponse(timeout: 3)
        XCTAssertEqual(next.body, Self.demoPattern(10), "no body bytes of the HEAD leaked into the next response")
    }

    // MARK: Upgrade and 100-continue

    func testUpgradeTunnelsBytesBothWays() throws {
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send(
            "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        let switching = try connection.readResponse()
        XCTAssertEqual(switching.status, 101)
        XCTAssertEqual(switching.header("Upgrade")?.lowercased(), "websocket")
        try connection.send("ping one")
        XCTAssertEqual(String(decoding: try connection.readRaw(count: 8), as: UTF8.self), "ping one")
        let big = Self.demoPattern(300_000)
        try connection.send(big)
        XCTAssertEqual(try connection.readRaw(count: big.count, timeout: 10), big)
        // A half-close from the client ends the tunnel on both sides.
        connection.shutdownWrite()
        XCTAssertTrue(connection.isClosedByPeer(timeout: 3))
    }

    /// RFC 9110 §10.1.1: a client that sends `Expect: 100-continue` waits for `100 Continue` before the body; the
    /// chain (proxy and backend) must send it (or a final status) promptly.
    func testExpect100ContinueGetsInterimResponseBeforeBody() throws {
        let body = Self.demoPattern(2_000)
        let connection = try RawHTTPConnection(port: proxy.proxyPort)
        try connection.send(
            "POST /digest HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\nExpect: 100-continue\r\n\r\n")
        do {
            let interim = try connection.readResponse(skipInterim: false, timeout: 2)
            XCTAssertEqual(interim.status, 100)
        } catch {
            XCTFail("no 100 Continue within 2 s: \(error)")
        }
        try connection.send(body)
        let final = try connection.readResponse()
        XCTAssertEqual(final.bodyString, "sha256=\(Digest.sha256Hex(body)) length=\(body.count)\n")
    }

    // MARK: Helpers

    /// The demo backend's body bytes: `i % 251`.
    static func demoPattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 % 251) } }

    /// Compares a large body with the pattern block by block with `memcmp` (a byte loop is slow in debug builds).
    static func matchesDemoPattern(_ body: [UInt8]) -> Bool {
        let block = demoPattern(251 * 4096)
        return body.withUnsafeBytes { bytes in
            block.withUnsafeBytes { pattern in
                var offset = 0
                while offset < bytes.count {
                    let n = min(pattern.count, bytes.count - offset)
                    if memcmp(bytes.baseAddress! + offset, pattern.baseAddress!, n) != 0 { return false }
                    offset += n
                }
                return true
            }
        }
    }
}

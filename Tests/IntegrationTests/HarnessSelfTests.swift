import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Tests of the integration-test support code itself, against in-test servers and small scripts only, so they run
/// before (and independently of) the real `lb-server` and `lb-demo-backend`. All ports are kernel-chosen.
final class HarnessSelfTests: IntegrationTestCase {
    // MARK: RawHTTPConnection against SpyBackend

    func testReadsContentLengthBodyAndKeepsConnectionOpen() throws {
        let spy = try SpyBackend(response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Backend: a\r\n\r\nhello")
        let connection = try RawHTTPConnection(port: spy.port)
        for _ in 0..<2 {
            try connection.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try connection.readResponse()
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.reason, "OK")
            XCTAssertEqual(response.header("x-BACKEND"), "a")
            XCTAssertEqual(response.bodyString, "hello")
        }
        XCTAssertFalse(connection.isClosedByPeer(timeout: 0.05))
        XCTAssertEqual(spy.requestCount, 2)
        XCTAssertEqual(spy.connectionCount, 1)
    }

    func testDecodesChunkedBodyWithExtensionsAndTrailers() throws {
        let spy = try SpyBackend(
            response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Checksum: 42\r\n\r\n")
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try connection.readResponse()
        XCTAssertEqual(response.bodyString, "Wikipedia")
        XCTAssertEqual(response.trailers.first?.0, "X-Checksum")
        XCTAssertEqual(response.trailers.first?.1, "42")
        XCTAssertTrue(String(decoding: response.raw, as: UTF8.self).hasSuffix("0\r\nX-Checksum: 42\r\n\r\n"))
        XCTAssertTrue(connection.unconsumedBytes.isEmpty)
    }

    func testTransferEncodingChunkedWinsOverContentLengthAndBothStayVisible() throws {
        // The shape of a "malicious backend" reply: a test of the proxy can assert on both headers.
        let spy = try SpyBackend(
            response: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "3\r\nabc\r\n0\r\n\r\n")
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try connection.readResponse()
        XCTAssertEqual(response.bodyString, "abc")
        XCTAssertEqual(response.headerValues("content-length"), ["100"])
        XCTAssertEqual(response.header("Transfer-Encoding"), "chunked")
    }

    func testReadsCloseDelimitedBodyUntilEOF() throws {
        let spy = try SpyBackend(
            response: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", closeAfterReply: true)
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try connection.readResponse()
        XCTAssertEqual(response.bodyString, "until the end")
        XCTAssertTrue(connection.isClosedByPeer(timeout: 1))
        XCTAssertFalse(connection.sawReset)
    }

    func testReadsTwoPipelinedResponsesSentInOneWrite() throws {
        let spy = try SpyBackend(
            reply: .oncePerConnection(
                Array(
                    ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                        + "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n").utf8)))
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
        let first = try connection.readResponse()
        let second = try connection.readResponse()
        XCTAssertEqual([first.status, second.status], [200, 201])
        XCTAssertEqual([first.bodyString, second.bodyString], ["first", "second"])
        try spy.waitForRequests(2)
        XCTAssertEqual(
            spy.requests.map { String(decoding: $0, as: UTF8.self) },
            ["GET /1 HTTP/1.1\r\nHost: t\r\n\r\n", "GET /2 HTTP/1.1\r\nHost: t\r\n\r\n"])
    }

    func testHeadResponseHasNoBodyAndNextResponseStillParses() throws {
        let spy = try SpyBackend(
            reply: .custom { request, _ in
                let head = String(decoding: request, as: UTF8.self).hasPrefix("HEAD")
                return Array(("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + (head ? "" : "body")).utf8)
            })
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try connection.readResponse(headRequest: true)
        XCTAssertEqual(head.header("Content-Length"), "4")
        XCTAssertEqual(head.body, [])
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().bodyString, "body")
    }

    func testInterimResponsesAreSkippedOrReturnedOnRequest() throws {
        let reply = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-Final: yes\r\n\r\n"
        let spy = try SpyBackend(response: reply)
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().status, 204)
        try connection.send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        let interim = try connection.readResponse(skipInterim: false)
        XCTAssertEqual(interim.status, 100)
        XCTAssertTrue(interim.isInterim)
        XCTAssertEqual(try connection.readResponse(skipInterim: false).header("x-final"), "yes")
    }

    func testMalformedContentLengthIsReportedNotGuessed() throws {
        let spy = try SpyBackend(response: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nhello")
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertThrowsError(try connection.readResponse()) { error in
            guard case HarnessError.malformedResponse = error else { return XCTFail("unexpected \(error)") }
        }
    }

    func testSilentPeerTimesOutWithPartialBytes() throws {
        let spy = try SpyBackend(reply: .silent)
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        let started = Date()
        XCTAssertThrowsError(try connection.readResponse(timeout: 0.2)) { error in
            guard case HarnessError.timedOut = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        try spy.waitForRequests(1)
    }

    func testReadAllReturnsEverythingUntilEOF() throws {
        let spy = try SpyBackend(response: "not http at all", closeAfterReply: true)
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(String(decoding: try connection.readAll(), as: UTF8.self), "not http at all")
    }

    func testClosedPeerIsObservedAsClosed() throws {
        let spy = try SpyBackend(reply: .silent)
        let connection = try RawHTTPConnection(port: spy.port)
        try connection.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        try spy.waitForRequests(1)
        XCTAssertFalse(connection.isClosedByPeer(timeout: 0.05))
        spy.stop()
        XCTAssertTrue(connection.isClosedByPeer(timeout: 2))
        XCTAssertThrowsError(try RawHTTPConnection(port: spy.port), "listening socket must be closed by stop()")
    }

    // MARK: SpyBackend

    func testSpyFramesRequestsByContentLengthAndChunkedBodies() throws {
        let spy = try SpyBackend()
        let connection = try RawHTTPConnection(port: spy.port)
        let post = "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n\r\n\r\nbody!"
        let chunked = "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        try connection.send(post + chunked + "GET /g HTTP/1.1\r\nHost: t\r\n\r\n")
        for _ in 0..<3 { XCTAssertEqual(try connection.readResponse().bodyString, "spy") }
        XCTAssertEqual(
            spy.requests.map { String(decoding: $0, as: UTF8.self) }.map { $0.prefix(7) },
            ["POST /p", "POST /c", "GET /g "])
        XCTAssertEqual(spy.receivedString, post + chunked + "GET /g HTTP/1.1\r\nHost: t\r\n\r\n")
    }

    func testSpyAnswersOncePerConnectionAndRecordsEachConnection() throws {
        let spy = try SpyBackend(reply: .oncePerConnection(SpyBackend.okResponse))
        for path in ["/a", "/b"] {
            let connection = try RawHTTPConnection(port: spy.port)
            try connection.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\nGET \(path)2 HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try connection.readResponse().status, 200)
            XCTAssertThrowsError(try connection.readResponse(timeout: 0.1))
        }
        try spy.waitForRequests(4)
        XCTAssertEqual(spy.connectionCount, 2)
        XCTAssertTrue(String(decoding: spy.bytesPerConnection[1], as: UTF8.self).hasPrefix("GET /b "))
    }

    func testHTTPClientSendsHostAndConnectionClose() throws {
        let spy = try SpyBackend(closeAfterReply: true)
        let response = try HTTPClient.get(port: spy.port, path: "/hello", headers: [("X-Test", "1")])
        XCTAssertEqual(response.bodyString, "spy")
        let request = spy.receivedString
        XCTAssertTrue(request.hasPrefix("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:\(spy.port)\r\n"), request)
        XCTAssertTrue(request.contains("X-Test: 1\r\n"))
        XCTAssertTrue(request.hasSuffix("Connection: close\r\n\r\n"))
    }

    // MARK: ManagedProcess

    /// A stand-in for the real binaries: binds two sockets, logs to both streams, prints the contract lines.
    private static let fakeServer = """
        import signal, socket, sys, time
        def listener():
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); return s
        proxy, admin = listener(), listener()
        signal.signal(signal.SIGHUP, lambda *_: print("reloaded", flush=True))
        print("starting up", file=sys.stderr, flush=True)
        print(f"fake-lb listening on 127.0.0.1:{proxy.getsockname()[1]} (proxy)", flush=True)
        print(f"fake-lb listening on 127.0.0.1:{admin.getsockname()[1]} (admin)", flush=True)
        while True: time.sleep(0.02)
        """

    func testManagedProcessReportsPortsForwardsSignalsAndTerminates() throws {
        let process = try ManagedProcess.start(try python(), ["-c", Self.fakeServer], name: "fake-lb")
        let proxy = try process.waitForListening(kind: .proxy)
        let admin = try process.waitForListening(kind: .admin)
        XCTAssertNotEqual(proxy, admin)
        XCTAssertNoThrow(try RawHTTPConnection(port: proxy).close(), "the reported port must be the bound one")
        XCTAssertThrowsError(try process.waitForListening(kind: .backend, timeout: 0.1), "no unlabelled line")

        process.signal(SIGHUP)
        try eventually(timeout: 5, "SIGHUP handler ran") { process.log.contains("reloaded") }
        XCTAssertTrue(process.log.contains("starting up"), "stderr is captured too")

        XCTAssertEqual(process.terminate(), 128 + SIGTERM)
        XCTAssertFalse(process.isRunning)
        XCTAssertEqual(process.terminate(), 128 + SIGTERM, "terminate is idempotent")
        XCTAssertTrue(process.log.contains("reloaded"), "the log outlives the process")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: process.logPath)
                && ProcessInfo.processInfo.environment["LB_KEEP_LOGS"] == nil)
    }

    func testExitStatusIsReported() throws {
        let process = try ManagedProcess.start(try python(), ["-c", "import sys; sys.exit(3)"])
        XCTAssertEqual(process.waitForExit(timeout: 10), 3)
    }

    func testTerminateEscalatesToSIGKILLWhenSIGTERMIsIgnored() throws {
        let script = """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("listening on 127.0.0.1:1", flush=True)
            time.sleep(60)
            """
        let process = try ManagedProcess.start(try python(), ["-c", script])
        XCTAssertEqual(try process.waitForListening(), 1)
        XCTAssertEqual(process.terminate(grace: 0.2), 128 + SIGKILL)
    }

    func testWaitForListeningFailsFastWithLogWhenProcessExits() throws {
        let process = try ManagedProcess.start(
            try python(), ["-c", "print('config error: no backends'); raise SystemExit(2)"])
        let started = Date()
        XCTAssertThrowsError(try process.waitForListening(timeout: 30)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("exited with status 2"), message)
            XCTAssertTrue(message.contains("config error: no backends"), message)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testListeningLineParsing() {
        let log = """
            [info] lb-server starting
            lb-demo-backend listening on 127.0.0.1:40123
            lb-server listening on 127.0.0.1:40126 (proxy, tls)
            lb-server listening on 127.0.0.1:40124 (proxy)
            lb-server listening on 127.0.0.1:40125 (admin)
            lb-server listening on 127.0.0.1:4012
            """
        XCTAssertEqual(ManagedProcess.listeningPort(in: log + "\n", kind: .backend), 40123)
        XCTAssertEqual(ManagedProcess.listeningPort(in: log, kind: .proxy), 40124, "a TLS line is not the plain one")
        XCTAssertEqual(ManagedProcess.listeningPort(in: log, kind: .proxyTLS), 40126)
        XCTAssertEqual(ManagedProcess.listeningPort(in: log, kind: .admin), 40125)
        XCTAssertNil(ManagedProcess.listeningPort(in: "x listening on 127.0.0.1:99", kind: .backend), "incomplete line")
        XCTAssertNil(
            ManagedProcess.listeningPort(in: "listening on 127.0.0.1:0\n", kind: .backend), "port 0 is not a port")
    }

    func testTearDownStopsEverythingStillRunning() throws {
        let process = try ManagedProcess.start(try python(), ["-c", "import time; time.sleep(60)"])
        let spy = try SpyBackend()
        TestResources.shared.cleanUpAll()
        XCTAssertFalse(process.isRunning)
        XCTAssertThrowsError(try RawHTTPConnection(port: spy.port))
        XCTAssertTrue(TestResources.shared.all.isEmpty)
    }

    func testChildProcessesInheritNoHarnessSockets() throws {
        let spy = try SpyBackend()
        let connection = try RawHTTPConnection(port: spy.port)
        defer { connection.close() }
        let listener = try LoopbackSocket.listen()
        defer { Glibc.close(listener.fd) }
        let ours = try [connection.fileDescriptor, listener.fd].map {
            try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")
        }
        // Lists what each of the child's descriptors points at. (Foundation's Process deliberately passes the child
        // one socket of its own, to notice its exit, so "no socket at all" would be the wrong check.)
        let script = """
            import os
            for fd in os.listdir("/proc/self/fd"):
                try: print(fd, os.readlink("/proc/self/fd/" + fd))
                except OSError: pass
            """
        let result = ManagedProcess.run(try python(), ["-c", script], timeout: 10)
        let listing = String(decoding: result.stdout, as: UTF8.self)
        XCTAssertEqual(result.status, 0, result.stderr)
        for socket in ours { XCTAssertFalse(listing.contains(socket), "\(socket) leaked into the child:\n\(listing)") }
    }

    // MARK: ManagedProcess.run

    func testRunCapturesStdoutStderrStatusAndInput() throws {
        let script = """
            import sys
            sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])
            print("err", file=sys.stderr)
            sys.exit(4)
            """
        let input = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0) })
        let result = ManagedProcess.run(try python(), ["-c", script], input: input, timeout: 10)
        XCTAssertEqual(result.status, 4)
        XCTAssertEqual(result.stdout, Data(input.reversed()))
        XCTAssertEqual(result.stderr, "err\n")
    }

    func testRunKillsACommandThatOverrunsItsTimeout() {
        let started = Date()
        let result = ManagedProcess.run("sleep", ["30"], timeout: 0.3)
        XCTAssertEqual(result.status, 128 + SIGKILL)
        XCTAssertTrue(result.stderr.contains("timeout"), result.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertEqual(ManagedProcess.run("no-such-command-lb", [], timeout: 1).status, 127)
    }

    // MARK: Digest, polling, /proc, binaries

    func testSHA256MatchesKnownVectorsAndSha256sum() throws {
        XCTAssertEqual(Digest.sha256Hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(
            Digest.sha256Hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            Digest.sha256Hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var generator = SystemRandomNumberGenerator()
        let data = (0..<100_003).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let result = ManagedProcess.run("sha256sum", [], input: Data(data), timeout: 10)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(String(decoding: result.stdout.prefix(64), as: UTF8.self), Digest.sha256Hex(data))
    }

    func testEventuallyPollsUntilTrueAndGivesUpWithDescription() throws {
        var calls = 0
        try eventually(timeout: 1, interval: 0.001) {
            calls += 1
            return calls == 3
        }
        XCTAssertEqual(calls, 3)
        XCTAssertThrowsError(try eventually(timeout: 0.05, "the impossible") { false }) { error in
            XCTAssertTrue("\(error)".contains("the impossible"))
        }
    }

    func testReadsResidentAndPeakMemoryFromProc() throws {
        let rss = try rssKiB(pid: getpid())
        let peak = try peakRssKiB(pid: getpid())
        XCTAssertGreaterThan(rss, 1_000)
        XCTAssertGreaterThanOrEqual(peak, rss)
        let process = try ManagedProcess.start(try python(), ["-c", "pass"])
        _ = process.waitForExit(timeout: 10)
        XCTAssertThrowsError(try rssKiB(pid: process.pid))
    }

    func testMissingBinaryErrorTellsToBuildFirst() {
        XCTAssertThrowsError(try LBBinaries.path(of: .server, in: "/nonexistent-lb-bin")) { error in
            XCTAssertTrue("\(error)".contains("run `swift build` first"), "\(error)")
        }
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: LBBinaries.packageRoot.appendingPathComponent("Package.swift").path))
    }

    private func python() throws -> String {
        guard let path = ManagedProcess.resolveExecutable("python3") else { throw XCTSkip("python3 is not installed") }
        return path
    }
}

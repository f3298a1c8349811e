import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 16's hostile clients, one test each: what each costs lb is bounded, counted in `/api/stats` and
/// `/metrics`, and an ordinary client probing meanwhile (`Prober`) sees no failure and a p99 under 50 ms. After
/// each, lb's open client connections return to where they were and its RSS to within 8 MiB of it. Under a sanitizer
/// the attacks and counters are checked, not the RSS and latency bounds (`Sanitizer`).
///
/// The short timeouts keep the class quick; the sweep that checks deadlines runs every quarter of the shortest
/// (at least 50 ms), hence the slack on timing assertions.
final class HostileClientTests: IntegrationTestCase {
    /// The ordinary client's latency bound on loopback.
    private static let p99Bound = 0.050
    /// How far above its baseline lb's RSS may stay once the attack is over: glibc keeps some freed memory in its
    /// per-thread arenas instead of returning it to the kernel, and the baseline was read early in a process whose
    /// heap still grows a little (histograms, pools) with ordinary traffic; a leak of what the attack held (tens of
    /// MiB in every test here) would not fit.
    private static let rssSlackKiB = 8 * 1024

    // MARK: (a) slowloris

    /// 50 connections trickle a head one byte per 50 ms: each gets 408 and a close at `client_header` (1 s),
    /// however steadily it trickles, and each is counted as a header timeout.
    func testTricklingHeadsAreCutAtTheHeaderTimeout() throws {
        let h = try start(timeouts: ["client_header": "1s"])
        let head = Array("GET /trickle HTTP/1.1\r\nHost: t\r\nX-Pad: \(String(repeating: "a", count: 400))\r\n\r\n".utf8)
        let connections = try (0..<50).map { _ in try RawHTTPConnection(port: h.lb.proxyPort) }
        let started = Date()
        var answered = Set<Int>()
        var sent = 0
        // One byte per connection per round, never the head's end: the sleep is the slow client's pace.
        while answered.count < connections.count && Date().timeIntervalSince(started) < 5 && sent < head.count - 4 {
            for (i, c) in connections.enumerated() where !answered.contains(i) {
                if Self.isReadable(c.fileDescriptor) {
                    answered.insert(i)
                } else {
                    try? c.send([head[sent]])
                }
            }
            sent += 1
            Thread.sleep(forTimeInterval: 0.05)
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(answered.count, connections.count, "trickling connections still open after \(elapsed) s")
        XCTAssertLessThan(elapsed, 1 + 1.5, "cut later than client_header allows")
        for c in connections {
            XCTAssertEqual(try c.readResponse(timeout: 2).status, 408)
            XCTAssertTrue(c.isClosedByPeer(timeout: 2))
            c.close()
        }
        try h.finish(self) { stats, metrics in
            XCTAssertEqual(Self.int(stats, "connections.header_timeouts"), 50)
            XCTAssertEqual(Self.int(stats, "proxy_errors.408"), 50)
            XCTAssertTrue(metrics.contains("lb_client_timeouts_total{timeout=\"client_header\"} 50"), metrics)
        }
    }

    // MARK: (b) connections that send nothing

    /// 2,000 connections that send nothing: lb holds them (bounded memory per connection) and closes each at
    /// `client_idle`, counting every one.
    func testThousandsOfSilentConnectionsAreHeldCheaplyAndClosedAtTheIdleTimeout() throws {
        let count = 2_000
        try requireOpenFileLimit(count + 500)
        let h = try start(timeouts: ["client_header": "1s", "client_idle": "2s"])
        var connections: [RawHTTPConnection] = []
        connections.reserveCapacity(count)
        for _ in 0..<count { connections.append(try RawHTTPConnection(port: h.lb.proxyPort)) }
        try eventually(timeout: 5, "lb holds the \(count) silent connections") {
            Self.int(try h.stats(), "connections.open") >= count
        }
        let heldKiB = try rssKiB(pid: h.lb.process.pid) - h.rssBaseline
        print("\(count) silent connections: +\(heldKiB) KiB RSS (\(heldKiB * 1024 / count) bytes each)")
        // About 1.4 KiB each measured (no read buffer is held between reads); 8 KiB leaves room for allocator noise.
        if Sanitizer.measuresResources {
            XCTAssertLessThan(heldKiB, count * 8, "a silent connection costs more than 8 KiB")
        }
        let started = Date()
        try eventually(timeout: 6, "every silent connection is closed by lb") {
            Self.closedCount(connections) == count
        }
        print("silent connections closed within \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        for c in connections { c.close() }
        try h.finish(self) { stats, metrics in
            XCTAssertEqual(Self.int(stats, "connections.idle_timeouts"), count)
            XCTAssertTrue(metrics.contains("lb_client_timeouts_total{timeout=\"client_idle\"} \(count)"))
        }
    }

    // MARK: (c) oversized heads

    /// Heads of 256 KiB, over `limits.max_header_bytes` (8 KiB) and over one 64 KiB read of lb's, 200 times from 4
    /// clients at once: each gets its 431 and a close (lb reads no further than the limit; closing with the rest
    /// unread resets the connection, after the 431), and each is counted.
    func testOversizedHeadsAreRefusedWith431EveryTime() throws {
        let h = try start(timeouts: ["client_header": "1s"], limits: ["max_header_bytes": 8192])
        let head = Array(
            "GET /big HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "b", count: 256 * 1024))\r\n\r\n".utf8)
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<50 {
                do {
                    let c = try RawHTTPConnection(port: h.lb.proxyPort)
                    try c.send(head)
                    let response = try c.readResponse()
                    if response.status != 431 { failures.withLock { $0.append("\(t).\(i): \(response.status)") } }
                    if !c.isClosedByPeer(timeout: 2) { failures.withLock { $0.append("\(t).\(i): left open") } }
                    c.close()
                } catch {
                    failures.withLock { $0.append("\(t).\(i): \(error)") }
                }
            }
        }
        XCTAssertEqual(failures.current, [], "every oversized head gets its 431 and a close")
        try h.finish(self) { stats, metrics in
            XCTAssertEqual(Self.int(stats, "proxy_errors.431"), 200)
            XCTAssertTrue(metrics.contains("lb_proxy_errors_total{status=\"431\"} 200"))
        }
    }

    // MARK: (d) uploads cut by a reset

    /// 20 uploads reset (SO_LINGER 0) after 256 KiB of a 4 MiB body, once lb has read those bytes and passed them
    /// on: each is counted as an aborted upload, its backend connection is closed (not pooled, not leaked).
    func testUploadsCutByAResetAreCountedAndTheirBackendConnectionsClosed() throws {
        let h = try start(timeouts: ["client_header": "1s"])
        let head = Array("POST /digest HTTP/1.1\r\nHost: u\r\nContent-Length: \(4 << 20)\r\n\r\n".utf8)
        let part = [UInt8](repeating: UInt8(ascii: "u"), count: 256 * 1024)
        for _ in 0..<20 {
            let before = Self.int(try h.stats(), "bytes.in")
            let c = try RawHTTPConnection(port: h.lb.proxyPort)
            try c.send(head + part)
            try eventually(timeout: 5, "lb read the upload's first part") {
                Self.int(try h.stats(), "bytes.in") >= before + head.count + part.count
            }
            c.closeWithReset()
        }
        try h.finish(self) { stats, metrics in
            XCTAssertEqual(Self.int(stats, "requests.uploads_aborted"), 20)
            XCTAssertEqual(Self.int(stats, "requests.client_aborted"), 20)
            XCTAssertEqual(Self.int(stats, "upstream.response_errors"), 0, "the client's reset is not the backend's fault")
            XCTAssertTrue(metrics.contains("lb_requests_uploads_aborted_total 20"))
            // Each upload's backend connection was closed: none is left carrying a request (a pooled one would
            // have broken a probe: its backend still waits for the rest of a 4 MiB body).
            let server = (stats["servers"] as? [[String: Any]])?.first ?? [:]
            XCTAssertEqual(Self.int(server, "in_use_connections"), 0, "\(server)")
            XCTAssertGreaterThanOrEqual(Self.int(server, "connects_opened"), 20)
        }
    }

    // MARK: (e) clients that never read

    /// Two clients ask for 64 MiB each and never read: lb pauses the backend at its high-water mark, so what it
    /// holds stays a few hundred KiB per client, not the response; at `client_send` it resets them. The backend is
    /// not blamed for the pause: `upstream_response` (2 s) is shorter than `client_send` (3 s), and no response
    /// error or 504 may follow.
    func testClientsThatNeverReadHoldBoundedMemoryAndAreResetAtTheSendTimeout() throws {
        // An in-test backend: the demo backend (a debug build) takes seconds to build 64 MiB. This one sends a
        // ready buffer, and a short answer to everything else (the prober).
        let size = 64 << 20
        let big = Array("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n".utf8) + [UInt8](repeating: 0x2E, count: size)
        let backend = try SpyBackend(reply: .custom { request, _ in
            request.starts(with: Array("GET /bytes".utf8)) ? big : SpyBackend.okResponse
        })
        let h = try start(
            timeouts: ["client_header": "1s", "client_send": "3s", "upstream_response": "2s"], backend: backend.address)
        let readers = try (0..<2).map { _ in try RawHTTPConnection(port: h.lb.proxyPort) }
        for r in readers { try r.send("GET /bytes?size=\(size) HTTP/1.1\r\nHost: r\r\n\r\n") }
        try eventually(timeout: 10, "lb paused both responses at the high-water mark") {
            Self.int(try h.stats(), "connections.slow_reader_pauses") >= 2
        }
        var peakKiB = 0
        let started = Date()
        try eventually(timeout: 8, "lb resets the clients that do not read at client_send") {
            peakKiB = max(peakKiB, try rssKiB(pid: h.lb.process.pid) - h.rssBaseline)
            return Self.int(try h.stats(), "connections.send_timeouts") == 2
        }
        let stalled = Date().timeIntervalSince(started)
        let out = Self.int(try h.stats(), "bytes.out")
        print("never-read clients: RSS peak +\(peakKiB) KiB, \(out) bytes sent, reset after \(stalled) s")
        // Each client can hold its high-water mark (64 KiB) plus one read in lb, and some MiB in the two kernels'
        // socket buffers; without back-pressure lb would hold both 64 MiB responses.
        if Sanitizer.measuresResources {
            XCTAssertLessThan(peakKiB, 16 * 1024, "lb buffered a response its client did not read")
        }
        XCTAssertLessThan(out, 2 * 16 << 20, "more went out than socket buffers can hold")
        for r in readers {
            XCTAssertTrue(r.isClosedByPeer(timeout: 5), "a client that never reads is closed")
            r.close()
        }
        try h.finish(self) { stats, metrics in
            XCTAssertEqual(Self.int(stats, "upstream.response_errors"), 0, "a slow client is not the backend's fault")
            XCTAssertEqual(Self.int(stats, "proxy_errors.504"), 0)
            XCTAssertEqual(Self.int(stats, "requests.client_aborted"), 2, "a send timeout ends the exchange as the client's")
            XCTAssertTrue(metrics.contains("lb_client_timeouts_total{timeout=\"client_send\"} 2"))
        }
    }

    /// The other side of `client_send`: a client that reads slowly but steadily (at most 64 KiB every 10 ms, far
    /// below what lb could send) is paused for, again and again, and gets its whole 8 MiB; it is never cut off.
    func testASlowButSteadyReaderGetsItsWholeResponse() throws {
        let size = 8 << 20
        let head = Array("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n".utf8)
        let big = head + [UInt8](repeating: 0x2E, count: size)
        let backend = try SpyBackend(reply: .custom { request, _ in
            request.starts(with: Array("GET /bytes".utf8)) ? big : SpyBackend.okResponse
        })
        let h = try start(timeouts: ["client_header": "1s", "client_send": "1s"], backend: backend.address)
        let reader = try RawHTTPConnection(port: h.lb.proxyPort)
        // A fixed 64 KiB receive buffer (no autotuning up to tens of MiB): the kernel cannot absorb the response,
        // so lb's queue fills and pauses, whatever the machine.
        try LoopbackSocket.setOption(reader.fileDescriptor, SOL_SOCKET, SO_RCVBUF, 64 * 1024)
        try reader.send("GET /bytes HTTP/1.1\r\nHost: r\r\n\r\n")
        var received = 0
        while received < big.count {
            received += try reader.readRaw(count: 1, timeout: 5).count  // at most 64 KiB: what one read returns
            Thread.sleep(forTimeInterval: 0.01)  // the slow reader's pace
        }
        XCTAssertEqual(received, big.count, "the whole response, nothing more")
        reader.close()
        try h.finish(self) { stats, _ in
            XCTAssertGreaterThanOrEqual(Self.int(stats, "connections.slow_reader_pauses"), 1, "the reader was slow")
            XCTAssertEqual(Self.int(stats, "connections.send_timeouts"), 0)
            XCTAssertEqual(Self.int(stats, "requests.client_aborted"), 0)
        }
    }

    // MARK: (f) a flood beyond max_client_connections

    /// With every worker at `limits.max_client_connections` (held by an attacker), 2,000 more connections are
    /// each closed at once and counted; the admin API answers all along and the prober, connected before the
    /// flood, is served.
    func testAFloodBeyondMaxClientConnectionsIsRefusedCheaplyAndCounted() throws {
        let limit = 64
        let h = try start(timeouts: ["client_header": "1s"], limits: ["max_client_connections": limit], keepAlive: true)
        var held: [RawHTTPConnection] = []
        for _ in 0..<300 { held.append(try RawHTTPConnection(port: h.lb.proxyPort)) }
        try eventually(timeout: 5, "lb accepted (or refused) every held connection") {
            Self.int(try h.stats(), "connections.total") == 300 + 1
        }
        let admitted = Self.int(try h.stats(), "connections.open") - 1  // the prober holds one
        XCTAssertLessThanOrEqual(admitted + 1, limit * Self.int(try h.stats(), "workers"))
        let adminFailures = Locked<[String]>([])
        let adminLatencies = Locked<[Double]>([])
        let flooding = Locked(true)
        let adminDone = DispatchGroup()
        adminDone.enter()
        Thread {
            while flooding.current {
                let started = Date()
                do {
                    let status = try h.admin.call("GET", "/api/stats").status
                    if status != 200 { adminFailures.withLock { $0.append("status \(status)") } }
                    adminLatencies.withLock { $0.append(Date().timeIntervalSince(started)) }
                } catch {
                    adminFailures.withLock { $0.append("\(error)") }
                }
                Thread.sleep(forTimeInterval: 0.005)
            }
            adminDone.leave()
        }.start()
        let flood = 2_000
        var refusedSeen = 0
        let started = Date()
        for _ in 0..<flood {
            let c = try RawHTTPConnection(port: h.lb.proxyPort)
            if c.isClosedByPeer(timeout: 2) { refusedSeen += 1 }
            c.close()
        }
        let took = Date().timeIntervalSince(started)
        flooding.withLock { $0 = false }
        adminDone.wait()
        print("flood: \(flood) connections refused in \(String(format: "%.2f", took)) s; admin answered "
            + "\(adminLatencies.current.count) times, slowest \(adminLatencies.current.max() ?? 0) s")
        XCTAssertEqual(refusedSeen, flood, "a connection beyond the limit is closed at once")
        XCTAssertEqual(adminFailures.current, [])
        XCTAssertGreaterThanOrEqual(adminLatencies.current.count, 3, "the admin API answered during the flood")
        XCTAssertLessThan(adminLatencies.current.max() ?? 0, 1, "the admin API stalled during the flood")
        for c in held { c.close() }
        try h.finish(self) { stats, metrics in
            let refused = Self.int(stats, "connections.refused")
            XCTAssertEqual(refused, 300 - admitted + flood, "every attacker connection was held or refused")
            XCTAssertTrue(metrics.contains("lb_connections_refused_total \(refused)"))
        }
    }

    // MARK: (g) max_connections_per_client

    /// `limits.max_connections_per_client: 8` over two workers: a client (127.0.0.2) opening 40 connections holds
    /// exactly 8, wherever the kernel spread them, and the rest are closed at once and counted; the prober
    /// (127.0.0.1) is not affected, and once the 8 close their address may connect again.
    func testMaxConnectionsPerClientHoldsOneAddressToItsLimitAcrossWorkers() throws {
        let limit = 8
        let attacker: UInt32 = 0x7F00_0002
        let h = try start(
            timeouts: ["client_header": "1s"], limits: ["max_connections_per_client": limit], extra: ["workers": 2])
        let connections = try (0..<40).map { _ in try RawHTTPConnection(port: h.lb.proxyPort, source: attacker) }
        try eventually(timeout: 5, "lb refused the connections beyond the limit") {
            Self.int(try h.stats(), "connections.refused_per_client") >= 40 - limit
        }
        var served = 0
        var refused = 0
        for c in connections {
            if c.isClosedByPeer(timeout: 0.01) {
                refused += 1
                XCTAssertTrue(c.unconsumedBytes.isEmpty, "a refusal is a close with no answer")
            } else {
                try c.send("GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
                XCTAssertEqual(try c.readResponse().status, 200)
                served += 1
            }
        }
        XCTAssertEqual(served, limit, "the address holds exactly its limit over both workers")
        XCTAssertEqual(refused, 40 - limit)
        for c in connections { c.close() }
        // The closed connections give their slots back: the address may hold its limit again.
        try eventually(timeout: 5, "the address's connections are released") {
            Self.int(try h.stats(), "connections.open") <= 1
        }
        let again = try (0..<limit).map { _ in try RawHTTPConnection(port: h.lb.proxyPort, source: attacker) }
        for c in again {
            try c.send("GET /again HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(try c.readResponse().status, 200)
            c.close()
        }
        try h.finish(self) { stats, metrics in
            XCTAssertEqual(Self.int(stats, "connections.refused_per_client"), 40 - limit)
            XCTAssertEqual(Self.int(stats, "connections.refused"), 0)
            XCTAssertTrue(metrics.contains("lb_connections_refused_per_client_total \(40 - limit)"))
        }
    }

    // MARK: set-up and the common checks

    /// One lb with a demo backend, a prober already under way, and the baselines the test returns to.
    private struct Harness {
        let lb: LBServerProcess
        let admin: AdminClient
        let prober: Prober
        let openBaseline: Int
        let rssBaseline: Int

        func stats() throws -> [String: Any] {
            let answer = try admin.call("GET", "/api/stats")
            guard answer.status == 200 else { throw HarnessError.conditionNotMet(description: "stats", timeout: 0) }
            return answer.json
        }

        /// Stops the prober and asserts it saw no failure and a p99 under the bound; waits for lb's open
        /// connections and RSS to return to their baselines; then hands the final stats and metrics to `checks`.
        func finish(
            _ test: HostileClientTests, file: StaticString = #filePath, line: UInt = #line,
            _ checks: ([String: Any], String) throws -> Void
        ) throws {
            let report = prober.stop()
            print("prober: \(report)")
            XCTAssertEqual(report.failures, [], "the ordinary client failed", file: file, line: line)
            XCTAssertGreaterThanOrEqual(report.count, 20, "the prober hardly ran", file: file, line: line)
            if Sanitizer.measuresResources {
                XCTAssertLessThan(report.p99, HostileClientTests.p99Bound, "\(report)", file: file, line: line)
            }
            try eventually(timeout: 10, "lb's open connections return to \(openBaseline)") {
                HostileClientTests.int(try stats(), "connections.open") == openBaseline
            }
            guard Sanitizer.measuresResources else { return try checks(try stats(), try metrics()) }
            var rss = 0
            do {
                try eventually(timeout: 10, interval: 0.1, "lb's RSS returns near its baseline") {
                    rss = try rssKiB(pid: lb.process.pid)
                    return rss <= rssBaseline + HostileClientTests.rssSlackKiB
                }
            } catch {
                XCTFail("RSS \(rss) KiB, baseline \(rssBaseline) KiB: \(error)", file: file, line: line)
            }
            print("RSS: baseline \(rssBaseline) KiB, after \(rss) KiB")
            try checks(try stats(), try metrics())
        }

        func metrics() throws -> String { try admin.call("GET", "/metrics").response.bodyString }
    }

    private func start(
        timeouts: [String: String], limits: [String: Any] = [:], extra: [String: Any] = [:], keepAlive: Bool = false,
        backend: String? = nil
    ) throws -> Harness {
        let address = try backend ?? LBBinaries.startDemoBackend(name: "b").address
        var settings: [String: Any] = ["timeouts": timeouts, "limits": limits]
        settings.merge(extra) { _, new in new }
        let lb = try startProxy(backends: [address], settings: settings)
        let admin = AdminClient(port: lb.adminPort)
        let open = Self.int(try admin.call("GET", "/api/stats").json, "connections.open")
        let prober = try Prober(port: lb.proxyPort, keepAlive: keepAlive)
        try prober.waitForProgress(20)
        return Harness(lb: lb, admin: admin, prober: prober, openBaseline: open, rssBaseline: try rssKiB(pid: lb.process.pid))
    }

    /// The integer at a dotted path of the stats JSON ("connections.open"), -1 when absent.
    static func int(_ json: [String: Any], _ path: String) -> Int {
        var node: Any = json
        for key in path.split(separator: ".") {
            guard let object = node as? [String: Any], let next = object[String(key)] else { return -1 }
            node = next
        }
        if let n = node as? Int { return n }
        if let d = node as? Double { return Int(d) }
        return -1
    }

    /// Readable now (bytes or a close waiting), without blocking.
    static func isReadable(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&p, 1, 0) > 0
    }

    /// How many of `connections` are readable now, without blocking: for connections lb sends nothing to (an
    /// idle close writes no byte), how many it has closed.
    static func closedCount(_ connections: [RawHTTPConnection]) -> Int {
        var fds = connections.map { pollfd(fd: $0.fileDescriptor, events: Int16(POLLIN), revents: 0) }
        _ = Glibc.poll(&fds, nfds_t(fds.count), 0)
        return fds.filter { $0.revents != 0 }.count
    }
}

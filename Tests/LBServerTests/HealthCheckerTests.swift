import Dispatch
import LBCore
import LBUV
import Logging
import XCTest

@testable import LBServer

/// The passive counter on `Backend`, and the active checker against in-process servers on a real loop.
final class HealthCheckerTests: XCTestCase {
    // MARK: passive counting (no loop)

    private func backend(id: String = "s", port: Int = 1) throws -> Backend {
        let spec = ServerSpec(id: id, host: "127.0.0.1", port: port)
        return Backend(spec: spec, address: try SocketAddress.resolve(host: "127.0.0.1", port: port), workers: 1)
    }

    func testPassiveFailuresMarkDownOnReachingTheThresholdOnce() throws {
        let b = try backend()
        b.health.setPassiveThreshold(3)
        XCTAssertFalse(b.recordPassiveFailure())
        XCTAssertFalse(b.recordPassiveFailure())
        XCTAssertTrue(b.isUp)
        XCTAssertTrue(b.recordPassiveFailure())
        XCTAssertFalse(b.isUp)
        XCTAssertFalse(b.recordPassiveFailure(), "later failures of the same streak do not report again")
        XCTAssertTrue(b.health.takePassiveDown())
        XCTAssertFalse(b.health.takePassiveDown(), "the checker consumes a verdict once")
    }

    func testPassiveSuccessResetsTheStreak() throws {
        let b = try backend()
        b.health.setPassiveThreshold(2)
        b.recordPassiveFailure()
        b.recordPassiveSuccess()
        XCTAssertEqual(b.health.consecutivePassiveFailures, 0)
        b.recordPassiveFailure()
        XCTAssertTrue(b.isUp, "failures separated by a success never add up")
    }

    func testPassiveCountingIsOffWithThresholdZero() throws {
        let b = try backend()
        b.health.setPassiveThreshold(0)
        for _ in 0..<100 { XCTAssertFalse(b.recordPassiveFailure()) }
        XCTAssertTrue(b.isUp)
        XCTAssertFalse(b.health.takePassiveDown())
    }

    func testReweightedCopySharesPassiveCountAndRecord() throws {
        let b = try backend()
        b.health.setPassiveThreshold(2)
        let copy = b.reweighted(ServerSpec(id: "s", host: "127.0.0.1", port: 1, weight: 5))
        b.recordPassiveFailure()
        XCTAssertTrue(copy.recordPassiveFailure())
        XCTAssertFalse(b.isUp)
        XCTAssertTrue(b.health === copy.health)
    }

    func testConcurrentFailuresFromManyThreadsCrossTheThresholdExactlyOnce() throws {
        let b = try backend()
        b.health.setPassiveThreshold(500)
        let crossings = ManagedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 where b.recordPassiveFailure() { crossings.increment() }
        }
        XCTAssertEqual(crossings.value, 1)
        XCTAssertFalse(b.isUp)
    }

    // MARK: active checks on a loop

    /// Runs `loop` until `condition` holds or `timeoutMs` passes; returns whether it held.
    private func run(_ loop: EventLoop, timeoutMs: UInt64, until condition: @escaping () -> Bool) -> Bool {
        var met = false
        let deadline = loop.now + timeoutMs
        let poll = LoopTimer(loop: loop) {
            if condition() { met = true }
            if met || loop.now >= deadline { loop.stop() }
        }
        poll.start(timeout: 5, repeat: 5)
        loop.run()
        poll.close()
        return met
    }

    private func state(for servers: [ServerSpec], health: LBConfig.HealthCheck) throws -> (RoutingState, LBConfig) {
        let config = LBConfig(servers: servers, healthCheck: health)
        return (try ProxyServer.buildState(config: config, previous: nil, workers: 1, generation: 1), config)
    }

    private func fastChecks(_ type: LBConfig.HealthCheck.Kind = .http) -> LBConfig.HealthCheck {
        LBConfig.HealthCheck(type: type, intervalMs: 20, timeoutMs: 200, rise: 2, fall: 2)
    }

    func testRefusedConnectionsTakeServerDownAndStopLeavesNoHandles() throws {
        let loop = try EventLoop()
        let closed = try StatusServer(loop: loop, status: 200)
        let port = closed.port
        closed.close()  // nothing listens there any more: connects are refused
        let (state, config) = try state(
            for: [ServerSpec(id: "gone", host: "127.0.0.1", port: port)], health: fastChecks())
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: state, config: config)
        let b = state.backends[0]
        XCTAssertTrue(run(loop, timeoutMs: 3000) { !b.isUp })
        let record = b.health.snapshot
        XCTAssertEqual(record.lastCheck?.ok, false)
        let error = record.lastCheck?.error ?? ""
        XCTAssertTrue(error.contains("ECONNREFUSED"), error)
        XCTAssertEqual(record.state.transitions, 1)
        checker.stop()
        XCTAssertEqual(loop.close(), 0, "every timer and probe handle is closed")
    }

    func testUnexpectedStatusIsAFailureAndExpectedStatusBringsServerBack() throws {
        let loop = try EventLoop()
        let server = try StatusServer(loop: loop, status: 503)
        let (state, config) = try state(
            for: [ServerSpec(id: "s", host: "127.0.0.1", port: server.port)], health: fastChecks())
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: state, config: config)
        let b = state.backends[0]
        XCTAssertTrue(run(loop, timeoutMs: 3000) { !b.isUp })
        XCTAssertEqual(b.health.snapshot.lastCheck?.code, 503)
        XCTAssertTrue(server.requests.allSatisfy { $0.hasPrefix("GET /health HTTP/1.1\r\n") }, "\(server.requests)")
        let request = try XCTUnwrap(server.requests.first)
        XCTAssertTrue(request.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"), request)
        XCTAssertTrue(request.contains("\r\nUser-Agent: lb-health\r\n"), request)
        XCTAssertFalse(request.contains("Connection:"), "a probe asks for keep-alive by default: \(request)")

        server.status = 204
        XCTAssertTrue(run(loop, timeoutMs: 3000) { b.isUp })
        XCTAssertEqual(b.health.snapshot.lastCheck?.code, 204)
        XCTAssertEqual(b.health.snapshot.state.transitions, 2)
        checker.stop()
        server.close()
        XCTAssertEqual(loop.close(), 0)
    }

    func testSilentServerTimesOutAndCountsAsFailure() throws {
        let loop = try EventLoop()
        let server = try StatusServer(loop: loop, status: nil)  // accepts, never answers
        var settings = fastChecks()
        settings.timeoutMs = 30
        let (state, config) = try state(
            for: [ServerSpec(id: "s", host: "127.0.0.1", port: server.port)], health: settings)
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: state, config: config)
        let b = state.backends[0]
        XCTAssertTrue(run(loop, timeoutMs: 3000) { !b.isUp })
        XCTAssertTrue(b.health.snapshot.lastCheck?.error?.hasPrefix("timeout") ?? false)
        checker.stop()
        server.close()
        XCTAssertEqual(loop.close(), 0)
    }

    func testPassiveDownNeedsRisePassesEvenThoughChecksPass() throws {
        let loop = try EventLoop()
        let server = try StatusServer(loop: loop, status: 200)
        var settings = fastChecks(.tcp)
        settings.passiveFailures = 2
        settings.rise = 3
        let (state, config) = try state(
            for: [ServerSpec(id: "s", host: "127.0.0.1", port: server.port)], health: settings)
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: state, config: config)
        let b = state.backends[0]
        XCTAssertTrue(run(loop, timeoutMs: 3000) { b.health.snapshot.lastCheck?.ok == true })
        b.recordPassiveFailure()
        XCTAssertTrue(b.recordPassiveFailure())
        XCTAssertFalse(b.isUp)
        XCTAssertTrue(
            run(loop, timeoutMs: 3000) { b.health.snapshot.state.transitions == 1 }, "the verdict is consumed")
        XCTAssertTrue(run(loop, timeoutMs: 3000) { b.isUp })
        let s = b.health.snapshot.state
        XCTAssertEqual(s.transitions, 2)
        XCTAssertGreaterThanOrEqual(s.consecutiveSuccesses, 3)
        XCTAssertEqual(b.health.consecutivePassiveFailures, 0, "coming back up starts a fresh passive streak")
        checker.stop()
        server.close()
        XCTAssertEqual(loop.close(), 0)
    }

    /// With `reuse_connection` (the default) probes of a server that keeps its connections alive go over one
    /// connection; when the server closes it, the next probe connects again without a failed check; when the
    /// server is gone, probes fail as ever.
    func testProbesReuseTheConnectionTheServerKeepsAndReconnectWhenItCloses() throws {
        let loop = try EventLoop()
        let server = try StatusServer(loop: loop, status: 200)
        server.keepAlive = true
        var settings = fastChecks()
        settings.timeoutMs = 2000  // a slow runner must not time a probe out (a new connection would follow)
        let (state, config) = try state(
            for: [ServerSpec(id: "s", host: "127.0.0.1", port: server.port)], health: settings)
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: state, config: config)
        let b = state.backends[0]
        XCTAssertTrue(run(loop, timeoutMs: 3000) { server.requests.count >= 5 })
        XCTAssertEqual(server.accepted, 1, "\(server.requests.count) probes over one connection")
        XCTAssertFalse(server.requests.contains { $0.contains("Connection:") }, "\(server.requests)")

        server.dropConnections()
        let before = server.requests.count
        XCTAssertTrue(run(loop, timeoutMs: 3000) { server.requests.count >= before + 3 })
        XCTAssertEqual(server.accepted, 2, "one new connection after the server closed the kept one")
        XCTAssertTrue(b.isUp)
        XCTAssertEqual(b.health.snapshot.state.failures, 0, "a closed idle connection is not a failed probe")

        server.close()
        XCTAssertTrue(run(loop, timeoutMs: 3000) { !b.isUp }, "a server gone is taken down")
        checker.stop()
        XCTAssertEqual(loop.close(), 0, "every timer and probe handle is closed")
    }

    /// The keep-alive race: the server closes the kept connection as a probe's request arrives on it. The same
    /// check goes over a new connection at once, and nothing counts as failed.
    func testAProbeMetByTheCloseOfItsKeptConnectionIsRepeatedOnANewOne() throws {
        let loop = try EventLoop()
        let server = try StatusServer(loop: loop, status: 200)
        server.keepAlive = true
        server.closeAtRequest = 2
        var settings = fastChecks()
        settings.timeoutMs = 2000
        let (state, config) = try state(
            for: [ServerSpec(id: "s", host: "127.0.0.1", port: server.port)], health: settings)
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: state, config: config)
        let b = state.backends[0]
        // Connection 1: request 1 answered, request 2 met by the close; connection 2 repeats it, and so on.
        XCTAssertTrue(run(loop, timeoutMs: 3000) {
            server.accepted >= 3 && b.health.snapshot.state.consecutiveSuccesses >= 3
        })
        XCTAssertEqual(b.health.snapshot.state.failures, 0, "a probe the server closed under is repeated, not failed")
        XCTAssertTrue(b.isUp)
        checker.stop()
        server.close()
        XCTAssertEqual(loop.close(), 0)
    }

    /// `reuse_connection: false`: a connection and `Connection: close` per probe, even to a server that would
    /// keep it.
    func testWithoutReuseEveryProbeConnects() throws {
        let loop = try EventLoop()
        let server = try StatusServer(loop: loop, status: 200)
        server.keepAlive = true
        var settings = fastChecks()
        settings.reuseConnection = false
        let (state, config) = try state(
            for: [ServerSpec(id: "s", host: "127.0.0.1", port: server.port)], health: settings)
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: state, config: config)
        XCTAssertTrue(run(loop, timeoutMs: 3000) { server.requests.count >= 4 })
        XCTAssertEqual(server.accepted, server.requests.count)
        XCTAssertTrue(server.requests.allSatisfy { $0.contains("\r\nConnection: close\r\n") }, "\(server.requests)")
        checker.stop()
        server.close()
        XCTAssertEqual(loop.close(), 0)
    }

    func testSyncStartsNewServersAndStopsRemovedOnes() throws {
        let loop = try EventLoop()
        let a = try StatusServer(loop: loop, status: 200)
        let c = try StatusServer(loop: loop, status: 200)
        let specA = ServerSpec(id: "a", host: "127.0.0.1", port: a.port)
        let specC = ServerSpec(id: "c", host: "127.0.0.1", port: c.port)
        let (first, config) = try state(for: [specA], health: fastChecks())
        let checker = HealthChecker(loop: loop, logger: Logger(label: "test"))
        checker.sync(with: first, config: config)
        XCTAssertEqual(checker.checkedServers, 1)
        XCTAssertTrue(run(loop, timeoutMs: 3000) { a.requests.count >= 2 })

        var next = config
        next.servers = [specC]
        let second = try ProxyServer.buildState(config: next, previous: first, workers: 1, generation: 2)
        checker.sync(with: second, config: next)
        XCTAssertEqual(checker.checkedServers, 1)
        let aCount = a.requests.count
        XCTAssertTrue(run(loop, timeoutMs: 3000) { c.requests.count >= 3 })
        XCTAssertLessThanOrEqual(a.requests.count, aCount + 1, "a removed server is no longer probed")
        checker.stop()
        checker.sync(with: second, config: next)
        XCTAssertEqual(checker.checkedServers, 0, "sync after stop starts nothing")
        a.close()
        c.close()
        XCTAssertEqual(loop.close(), 0)
    }
}

/// A counter several threads bump (the test's own bookkeeping, not the code under test).
private final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// A one-loop HTTP server for checker tests: answers every request head with `status` (or never, when nil),
/// then closes, or with `keepAlive` keeps the connection for the next request. Records each request head and
/// counts the connections it accepted.
private final class StatusServer {
    var status: Int?
    var keepAlive = false
    /// With `keepAlive`: the request number (1-based, per connection) at which the server closes the connection
    /// instead of answering, as a keep-alive timeout that meets the request would.
    var closeAtRequest: Int?
    private(set) var requests: [String] = []
    private(set) var accepted = 0
    private var listener: Listener?
    private var connections: [ObjectIdentifier: Responder] = [:]
    let port: Int

    init(loop: EventLoop, status: Int?) throws {
        self.status = status
        let l = try Listener(loop: loop, address: try SocketAddress.resolve(host: "127.0.0.1", port: 0))
        port = l.boundAddress.port
        listener = l
        l.onAccept = { [unowned self] listener in
            let r = Responder(loop: loop, server: self)
            if listener.accept(into: r) {
                accepted += 1
                connections[ObjectIdentifier(r)] = r
                r.startReading()
            }
        }
    }

    fileprivate func received(_ head: String, on r: Responder) {
        requests.append(head)
        guard let status else { return }
        r.served += 1
        if keepAlive, let n = closeAtRequest, r.served == n {
            r.close()
            return
        }
        if keepAlive {
            r.append(Array("HTTP/1.1 \(status) X\r\nContent-Length: 2\r\n\r\nok".utf8))
            r.flush()
        } else {
            r.append(Array("HTTP/1.1 \(status) X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".utf8))
            r.closeAfterFlush()
        }
    }

    fileprivate func closed(_ r: Responder) { connections[ObjectIdentifier(r)] = nil }

    /// Closes the connections it holds and goes on listening (a keep-alive timeout, a reload).
    func dropConnections() {
        for r in connections.values { r.close() }
    }

    func close() {
        listener?.close()
        listener = nil
        for r in connections.values { r.close() }
    }

    fileprivate final class Responder: TCPConnection {
        unowned let server: StatusServer
        private var buffer: [UInt8] = []
        var served = 0

        init(loop: EventLoop, server: StatusServer) {
            self.server = server
            super.init(loop: loop)
        }

        override func didRead(_ bytes: UnsafeRawBufferPointer) {
            buffer.append(contentsOf: bytes)
            let text = String(decoding: buffer, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n") {
                buffer.removeAll()
                server.received(String(text[..<end.upperBound]), on: self)
            }
        }

        override func didClose() { server.closed(self) }
    }
}

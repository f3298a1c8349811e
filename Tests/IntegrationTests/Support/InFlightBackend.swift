import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An in-test HTTP/1.1 backend on 127.0.0.1 (kernel-chosen port) that measures how much the proxy holds open at
/// once: the most connections open together and the most requests in flight together (a request's head came, no
/// answer was sent, and the proxy has not closed the connection). It holds each request for `holdFor` seconds,
/// or until the proxy closes the connection, then answers `200 ok` and closes (so nothing is pooled: every
/// connection the proxy holds is one it is using).
///
/// A close by the proxy is seen as POLLRDHUP, which the kernel reports as soon as the FIN arrives even when
/// unread bytes are ahead of it. Every count is taken after looking at every open connection under one lock, so
/// a connection the proxy closed before opening another is never counted beside it.
///
/// Threads: one accept thread, one per connection. `stop()` (idempotent; also at tear-down) wakes and joins them.
final class InFlightBackend: TestResource, @unchecked Sendable {
    let port: Int
    var address: String { "127.0.0.1:\(port)" }

    struct Counts: Sendable {
        var connections = 0
        var requests = 0
        var maxOpenConnections = 0
        var maxInFlightRequests = 0
    }

    private struct Link {
        var sawHead = false
        var peerClosed = false
    }

    private struct State {
        var links: [Int32: Link] = [:]
        var counts = Counts()
        var stopped = false
    }

    /// POLLRDHUP from Linux's <bits/poll.h>: the peer shut down its writing side. Glibc's Swift module leaves it
    /// out (it is a _GNU_SOURCE name).
    private static let pollRDHUP: Int16 = 0x2000

    private static let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".utf8)

    private let holdFor: TimeInterval
    private let listenFD: Int32
    private let wakeRead: Int32, wakeWrite: Int32
    private let threads = DispatchGroup()
    private let state = Locked(State())

    /// Starts listening. - Throws: `HarnessError.socket`.
    init(holdFor: TimeInterval) throws {
        self.holdFor = holdFor
        (listenFD, port) = try LoopbackSocket.listen(backlog: 1024)
        var pipeFDs: [Int32] = [0, 0]
        guard Glibc.pipe(&pipeFDs) == 0 else {
            Glibc.close(listenFD)
            throw HarnessError.socket(call: "pipe", errno: errno)
        }
        (wakeRead, wakeWrite) = (pipeFDs[0], pipeFDs[1])
        LoopbackSocket.setCloseOnExec(wakeRead)
        LoopbackSocket.setCloseOnExec(wakeWrite)
        TestResources.shared.register(self)
        startThread { $0.acceptLoop() }
    }

    var counts: Counts { state.withLock { $0.counts } }

    func stop() {
        let first = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
        if threads.wait(timeout: .now() + 5) == .success {
            Glibc.close(wakeRead)
            Glibc.close(wakeWrite)
        }
        Glibc.close(listenFD)
        TestResources.shared.unregister(self)
    }

    func cleanUp() { stop() }

    // MARK: counting

    /// Marks every link whose peer has closed, then updates the maxima. Called with the lock held.
    private static func recount(_ s: inout State) {
        for (fd, link) in s.links where !link.peerClosed {
            var p = pollfd(fd: fd, events: Int16(POLLIN) | Self.pollRDHUP, revents: 0)
            if Glibc.poll(&p, 1, 0) > 0 && p.revents & (Self.pollRDHUP | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                s.links[fd]?.peerClosed = true
            }
        }
        let open = s.links.values.filter { !$0.peerClosed }
        s.counts.maxOpenConnections = max(s.counts.maxOpenConnections, open.count)
        s.counts.maxInFlightRequests = max(s.counts.maxInFlightRequests, open.filter(\.sawHead).count)
    }

    // MARK: threads

    private func startThread(_ body: @escaping @Sendable (InFlightBackend) -> Void) {
        threads.enter()
        let thread = Thread { [self] in
            body(self)
            threads.leave()
        }
        thread.name = "InFlightBackend:\(port)"
        thread.start()
    }

    /// Waits until `fd` has `events` or `timeout` seconds pass (nil: forever); false when `stop()` was called.
    private func wait(_ fd: Int32, _ events: Int16, timeout: TimeInterval?) -> (stopped: Bool, revents: Int16) {
        var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        let ms = timeout.map { Int32($0 * 1000) } ?? -1
        while true {
            let ready = Glibc.poll(&fds, 2, ms)
            if ready < 0 && errno == EINTR { continue }
            return (fds[1].revents != 0, fds[0].revents)
        }
    }

    private func acceptLoop() {
        while true {
            let (stopped, _) = wait(listenFD, Int16(POLLIN), timeout: nil)
            if stopped { return }
            let fd = Glibc.accept(listenFD, nil, nil)
            guard fd >= 0 else { continue }
            LoopbackSocket.setCloseOnExec(fd)
            try? LoopbackSocket.setTimeouts(fd, 5)
            state.withLock { s in
                s.links[fd] = Link()
                s.counts.connections += 1
                Self.recount(&s)
            }
            startThread { $0.serve(fd) }
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            state.withLock { _ = $0.links.removeValue(forKey: fd) }
            Glibc.close(fd)
        }
        var head: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while HTTPWire.headEnd(in: head, from: 0) == nil {
            let (stopped, _) = wait(fd, Int16(POLLIN), timeout: nil)
            if stopped { return }
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return }
            head += chunk[..<n]
        }
        state.withLock { s in
            s.links[fd]?.sawHead = true
            s.counts.requests += 1
            Self.recount(&s)
        }
        let (stopped, revents) = wait(fd, Self.pollRDHUP, timeout: holdFor)
        if stopped || revents != 0 { return }
        // Out of the in-flight count before the answer can reach the proxy.
        state.withLock { _ = $0.links.removeValue(forKey: fd) }
        try? LoopbackSocket.sendAll(fd, Self.answer)
    }
}

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An in-test TCP server on 127.0.0.1 (kernel-chosen port) that records every byte it receives, per connection, and
/// answers with canned raw bytes. For tests where the backend's side of the wire is the evidence ("nothing reached
/// the backend", "the proxy forwarded exactly one request") or where the backend must misbehave (a response with
/// both Content-Length and Transfer-Encoding, a short body, no response at all).
///
/// Threads: one accept thread plus one thread per connection; recorded data is read under a lock from any thread.
/// `stop()` (idempotent; also run at test tear-down) wakes them through a pipe, waits for them and closes every
/// socket.
final class SpyBackend: TestResource, @unchecked Sendable {
    /// What to send back.
    enum Reply: Sendable {
        /// These bytes after every request detected on a connection.
        case perRequest([UInt8])
        /// These bytes after the first request on each connection; later requests are recorded, not answered.
        case oncePerConnection([UInt8])
        /// Nothing, ever (a backend that hangs).
        case silent
        /// The closure's bytes (if any) after each request; it gets the request's raw bytes and its 0-based index on
        /// its connection. Called on a connection thread.
        case custom(@Sendable (_ request: [UInt8], _ indexOnConnection: Int) -> [UInt8]?)
    }

    /// How requests are told apart in the byte stream (to know when to reply and what `requests` holds).
    enum Framing: Sendable {
        /// A request ends at its head's CRLFCRLF plus a Content-Length or chunked body, read leniently: a framing
        /// header the spy cannot parse counts as no body. The raw bytes stay the evidence, not this split.
        case messageBody
        /// A request ends at each CRLFCRLF; bodies are not looked at.
        case headOnly
    }

    /// A 200 with a short body, the default reply.
    static let okResponse = Array("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Backend: spy\r\n\r\nspy".utf8)

    let port: Int
    var address: String { "127.0.0.1:\(port)" }

    private let reply: Reply
    private let framing: Framing
    private let closeAfterReply: Bool
    private let replyDelay: TimeInterval
    private let listenFD: Int32
    /// Written once by `stop()`; never read, so it stays readable and wakes every thread polling it.
    private let wakeRead: Int32, wakeWrite: Int32
    private let threads = DispatchGroup()
    private let records = Locked(Records())

    private struct Records {
        var connections: [[UInt8]] = []
        var requests: [[UInt8]] = []
        var stopped = false
    }

    /// Starts listening and accepting. - Throws: `HarnessError.socket`.
    /// - Parameters:
    ///   - closeAfterReply: close the connection (FIN) right after each reply is sent.
    ///   - replyDelay: seconds to wait before each reply (a slow backend).
    init(
        reply: Reply = .perRequest(SpyBackend.okResponse), framing: Framing = .messageBody,
        closeAfterReply: Bool = false, replyDelay: TimeInterval = 0
    ) throws {
        self.reply = reply
        self.framing = framing
        self.closeAfterReply = closeAfterReply
        self.replyDelay = replyDelay
        (listenFD, port) = try LoopbackSocket.listen()
        var pipeFDs: [Int32] = [0, 0]
        guard Glibc.pipe(&pipeFDs) == 0 else {
            Glibc.close(listenFD)
            throw HarnessError.socket(call: "pipe2", errno: errno)
        }
        (wakeRead, wakeWrite) = (pipeFDs[0], pipeFDs[1])
        // pipe2/accept4 are not visible through the Glibc module, so FD_CLOEXEC is set right after: this leaves a
        // tiny window in which a process spawned concurrently from another thread could inherit the descriptor.
        LoopbackSocket.setCloseOnExec(wakeRead)
        LoopbackSocket.setCloseOnExec(wakeWrite)
        TestResources.shared.register(self)
        startThread { $0.acceptLoop() }
    }

    /// Convenience: answer every request with `response` (written as is; use `\r\n`).
    convenience init(response: String, closeAfterReply: Bool = false) throws {
        try self.init(reply: .perRequest(Array(response.utf8)), closeAfterReply: closeAfterReply)
    }

    // MARK: What was received

    /// Every byte received, all connections concatenated in accept order.
    var receivedBytes: [UInt8] { records.withLock { $0.connections.flatMap { $0 } } }
    var receivedString: String { String(decoding: receivedBytes, as: UTF8.self) }
    /// Bytes received on each connection, in accept order.
    var bytesPerConnection: [[UInt8]] { records.withLock { $0.connections } }
    var connectionCount: Int { records.withLock { $0.connections.count } }
    /// The raw bytes of each request detected (see `Framing`), in the order they completed.
    var requests: [[UInt8]] { records.withLock { $0.requests } }
    var requestCount: Int { records.withLock { $0.requests.count } }

    /// Waits until at least `count` requests have been detected. - Throws: `HarnessError.conditionNotMet`.
    func waitForRequests(_ count: Int, timeout: TimeInterval = 5) throws {
        try eventually(
            timeout: timeout, "spy backend to see \(count) request(s); saw \(requestCount): \(receivedBytes.debugText)"
        ) {
            requestCount >= count
        }
    }

    // MARK: What arrived since a mark

    /// A point in the spy's record; `arrivals(since:besides:)` tells what came after it.
    struct Mark: Sendable {
        let bytesPerConnection: [Int]
        let requestCount: Int
    }

    /// What the spy has recorded so far, taken under one lock.
    func mark() -> Mark {
        records.withLock { Mark(bytesPerConnection: $0.connections.map(\.count), requestCount: $0.requests.count) }
    }

    /// What was recorded after `mark`, leaving out one complete request for `path` (see `SpyArrivals`).
    func arrivals(since mark: Mark, besides path: String? = nil) -> SpyArrivals {
        let (connections, requests) = records.withLock { ($0.connections, $0.requests) }
        var newRequests = Array(requests.dropFirst(mark.requestCount))
        let known = mark.bytesPerConnection
        var deltas = connections.enumerated().map { i, bytes in
            (isNew: i >= known.count, bytes: Array(bytes.dropFirst(i < known.count ? known[i] : 0)))
        }
        if let path, let index = newRequests.firstIndex(where: { $0.starts(with: Array("GET \(path) ".utf8)) }) {
            let followUp = newRequests.remove(at: index)
            // Its bytes are one run at the end of the delta of the connection it came on.
            if let c = deltas.lastIndex(where: { $0.bytes.suffix(followUp.count).elementsEqual(followUp) }) {
                deltas[c].bytes.removeLast(followUp.count)
                if deltas[c].isNew && deltas[c].bytes.isEmpty { deltas.remove(at: c) }
            }
        }
        return SpyArrivals(
            requests: newRequests, bytes: deltas.flatMap(\.bytes), connections: deltas.filter(\.isNew).count)
    }

    // MARK: Stopping

    /// Stops accepting, closes every connection and the listening socket. Idempotent; safe from any thread.
    func stop() {
        let first = records.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
        if threads.wait(timeout: .now() + 5) == .success {
            Glibc.close(wakeRead)
            Glibc.close(wakeWrite)
        }  // else a thread is stuck in a send: leak the pipe rather than risk it reading a reused descriptor
        Glibc.close(listenFD)
        TestResources.shared.unregister(self)
    }

    func cleanUp() { stop() }

    // MARK: Threads

    private func startThread(_ body: @escaping @Sendable (SpyBackend) -> Void) {
        threads.enter()
        let thread = Thread { [self] in
            body(self)
            threads.leave()
        }
        thread.name = "SpyBackend:\(port)"
        thread.start()
    }

    /// Waits until `fd` is readable or `stop()` is called; false means stop.
    private func waitReadable(_ fd: Int32) -> Bool {
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let ready = Glibc.poll(&fds, 2, -1)
            if ready < 0 && errno == EINTR { continue }
            return ready > 0 && fds[1].revents == 0
        }
    }

    private func acceptLoop() {
        while waitReadable(listenFD) {
            let fd = Glibc.accept(listenFD, nil, nil)
            guard fd >= 0 else { continue }  // e.g. ECONNABORTED: the client gave up, keep serving
            LoopbackSocket.setCloseOnExec(fd)
            try? LoopbackSocket.setTimeouts(fd, 5)  // a peer that never reads must not block stop() forever
            let index = records.withLock { state -> Int in
                state.connections.append([])
                return state.connections.count - 1
            }
            startThread { $0.serve(fd, connection: index) }
        }
    }

    private func serve(_ fd: Int32, connection: Int) {
        defer { Glibc.close(fd) }
        var buffer: [UInt8] = []
        var scan = 0
        var answered = 0
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while waitReadable(fd) {
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { return }
            buffer += chunk[..<n]
            records.withLock { $0.connections[connection] += chunk[..<n] }
            while let end = Self.requestEnd(in: buffer, from: scan, framing: framing) {
                let request = Array(buffer[scan..<end])
                scan = end
                records.withLock { $0.requests.append(request) }
                guard let response = response(to: request, index: answered) else {
                    answered += 1
                    continue
                }
                answered += 1
                if replyDelay > 0 { Thread.sleep(forTimeInterval: replyDelay) }
                guard (try? LoopbackSocket.sendAll(fd, response)) != nil else { return }
                if closeAfterReply { return }
            }
        }
    }

    private func response(to request: [UInt8], index: Int) -> [UInt8]? {
        switch reply {
        case .perRequest(let bytes): return bytes
        case .oncePerConnection(let bytes): return index == 0 ? bytes : nil
        case .silent: return nil
        case .custom(let handler): return handler(request, index)
        }
    }

    /// Where the request starting at `start` ends, or nil if it is not complete yet. Leading empty lines are part
    /// of the request they precede (RFC 9112 §2.2 lets servers ignore them).
    static func requestEnd(in bytes: [UInt8], from start: Int, framing: Framing) -> Int? {
        var begin = start
        while bytes.count >= begin + 2 && bytes[begin] == 13 && bytes[begin + 1] == 10 { begin += 2 }
        guard let headEnd = HTTPWire.headEnd(in: bytes, from: begin) else { return nil }
        guard framing == .messageBody, let head = try? HTTPWire.parseHead(bytes[begin..<headEnd]) else {
            return headEnd
        }
        if HTTPWire.transferCodings(head.fields).last == "chunked" {
            switch try? HTTPWire.decodeChunked(bytes, from: headEnd) {
            case .needMore: return nil
            case .complete(_, _, let end): return end
            case nil: return headEnd  // malformed chunked body: count the head alone
            }
        }
        if let length = (try? HTTPWire.contentLength(head.fields)) ?? nil {
            return bytes.count >= headEnd + length ? headEnd + length : nil
        }
        return headEnd
    }
}

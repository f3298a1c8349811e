import CLibUV
import Foundation
import LBHTTP
import LBUV

/// The demo backend behind `make run` and the integration tests: a small HTTP/1.1 server on the same libuv
/// layer and parser as the proxy. Endpoints (any method unless noted):
/// - `GET /health` → 200 `ok`
/// - `/echo` → the request body, streamed back chunked as it arrives
/// - `/digest` → hex SHA-256 of the request body (computed by `digest`), with the body length
/// - `/bytes?size=N` → N bytes with Content-Length; `/chunked?size=N&chunk=M` → N bytes in M-byte chunks;
///   `/close?size=N` → N bytes delimited by closing the connection
/// - `/status/NNN` → that status; `/headers` → the request head as received
/// - `/upgrade` with `Upgrade:` → `101`, then echoes every byte
/// - anything else → `backend NAME path=PATH` (padded to `--size` bytes)
/// Every answer carries `X-Backend: NAME` and `X-Connection: N` (the connection's serial number).
public final class DemoBackend {
    public struct Options: Sendable {
        public var name: String
        public var delayMs: UInt64
        public var size: Int
        public init(name: String, delayMs: UInt64 = 0, size: Int = 0) {
            self.name = name
            self.delayMs = delayMs
            self.size = size
        }
    }

    let loop: EventLoop
    let options: Options
    let digest: @Sendable ([UInt8]) -> String
    private var listener: Listener?
    private var signals: [SignalWatcher] = []
    private var connections: [ObjectIdentifier: DemoConnection] = [:]
    /// Serial number of the next accepted connection (reported as `X-Connection`, so tests see reuse).
    var nextSerial = 1

    public init(options: Options, digest: @escaping @Sendable ([UInt8]) -> String) throws {
        loop = try EventLoop()
        self.options = options
        self.digest = digest
    }

    /// Binds and prints `lb-demo-backend listening on HOST:PORT`.
    public func start(host: String, port: Int) throws {
        lb_ignore_sigpipe()
        let l = try Listener(loop: loop, address: SocketAddress.resolve(host: host, port: port))
        l.onAccept = { [unowned self] listener in
            let c = DemoConnection(backend: self, serial: nextSerial)
            nextSerial += 1
            if listener.accept(into: c) {
                connections[ObjectIdentifier(c)] = c
                c.startReading()
            }
        }
        listener = l
        print("lb-demo-backend listening on \(l.boundAddress)")
        fflush(nil)
        for sig in [SIGINT, SIGTERM] {
            signals.append(SignalWatcher(loop: loop, signal: sig) { [unowned self] _ in self.stop() })
        }
    }

    func closed(_ c: DemoConnection) { connections[ObjectIdentifier(c)] = nil }

    func stop() {
        listener?.close()
        listener = nil
        for c in connections.values { c.close() }
        for s in signals { s.close() }
        signals.removeAll()
    }

    public func run() {
        loop.run()
        loop.close()
    }
}

final class DemoConnection: TCPConnection {
    unowned let backend: DemoBackend
    private var parser = HTTPParser(kind: .request, limits: HTTPLimits(maxBodyBytes: nil))
    private var pending: [UInt8] = []
    private var body: [UInt8] = []
    private var bodyLength = 0
    private var route = Route.plain
    private var waiting = false
    private var tunnel = false
    private var timer: LoopTimer?

    enum Route { case plain, echo, digest, upgrade }
    let serial: Int

    init(backend: DemoBackend, serial: Int) {
        self.backend = backend
        self.serial = serial
        super.init(loop: backend.loop)
    }

    override func didRead(_ bytes: UnsafeRawBufferPointer) {
        if tunnel {
            append(bytes)
            flush()
            return
        }
        if waiting {
            pending.append(contentsOf: bytes)
            return
        }
        let used = process(bytes)
        if used < bytes.count { pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...])) }
        flush()
    }

    private func process(_ input: UnsafeRawBufferPointer) -> Int {
        var pos = 0
        while !isClosing && !waiting {
            switch parser.next(input, &pos) {
            case .needMore:
                return pos
            case .head:
                startRequest()
            case .body(let r):
                let chunk = UnsafeRawBufferPointer(rebasing: input[r])
                bodyLength += chunk.count
                switch route {
                case .echo:
                    appendChunk(chunk)
                case .digest:
                    body.append(contentsOf: chunk)
                default:
                    break
                }
            case .end:
                if tunnel {
                    return pos
                }
                finishRequest()
            case .error(let e):
                ErrorResponses.write(status: e.status, close: true, into: &out)
                closeAfterFlush()
                return input.count
            }
        }
        return pos
    }

    private var target: String {
        let h = parser.head
        return String(decoding: h.bytes[h.target], as: UTF8.self)
    }

    private func startRequest() {
        body.removeAll(keepingCapacity: true)
        bodyLength = 0
        let path = target.split(separator: "?").first.map(String.init) ?? "/"
        switch path {
        case "/echo":
            route = .echo
            respondHead(status: 200, headers: "Transfer-Encoding: chunked\r\n")
        case "/digest":
            route = .digest
        case "/upgrade" where parser.head.isUpgrade:
            route = .upgrade
        default:
            route = .plain
        }
    }

    private func finishRequest() {
        switch route {
        case .echo:
            append(HeadWriter.lastChunk)
            return
        case .digest:
            let text = "sha256=\(backend.digest(body)) length=\(bodyLength)\n"
            respond(status: 200, body: Array(text.utf8))
            return
        case .upgrade:
            append(Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8))
            tunnel = true
            flush()
            if !pending.isEmpty {
                append(pending)
                pending.removeAll()
            }
            return
        case .plain:
            break
        }
        // `?delay_ms=N` delays this one answer (a slow request in tests); `--delay-ms` delays every answer.
        let delayMs = query("delay_ms").map { UInt64(max(0, $0)) } ?? backend.options.delayMs
        if delayMs > 0 {
            waiting = true
            let t = LoopTimer(loop: loop) { [unowned self] in
                self.timer?.close()
                self.timer = nil
                self.waiting = false
                self.answerPlain()
                self.flush()
                self.resumePending()
            }
            timer = t
            t.start(timeout: delayMs)
            return
        }
        answerPlain()
    }

    private func resumePending() {
        guard !pending.isEmpty else { return }
        let buf = pending
        pending.removeAll()
        let used = buf.withUnsafeBytes { process($0) }
        if used < buf.count { pending = Array(buf[used...]) + pending }
        flush()
    }

    private func query(_ name: String) -> Int? {
        let parts = target.split(separator: "?", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        for pair in parts[1].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0] == name { return Int(kv[1]) }
        }
        return nil
    }

    private func answerPlain() {
        let t = target
        let path = t.split(separator: "?").first.map(String.init) ?? "/"
        let name = backend.options.name
        if path == "/health" {
            respond(status: 200, body: Array("ok\n".utf8))
        } else if path == "/bytes" {
            respond(status: 200, body: pattern(query("size") ?? 0))
        } else if path == "/chunked" {
            let data = pattern(query("size") ?? 0)
            let step = max(1, query("chunk") ?? 8192)
            respondHead(status: 200, headers: "Transfer-Encoding: chunked\r\n")
            var i = 0
            while i < data.count {
                let n = min(step, data.count - i)
                data.withUnsafeBytes { appendChunk(UnsafeRawBufferPointer(rebasing: $0[i..<(i + n)])) }
                i += n
            }
            append(HeadWriter.lastChunk)
        } else if path == "/close" {
            let data = pattern(query("size") ?? 0)
            append(Array("HTTP/1.1 200 OK\r\nX-Backend: \(name)\r\nConnection: close\r\n\r\n".utf8))
            append(data)
            closeAfterFlush()
        } else if path.hasPrefix("/status/"), let code = Int(path.dropFirst(8)), (200...599).contains(code) {
            respond(status: code, body: Array("status \(code) from \(name)\n".utf8))
        } else if path == "/headers" {
            respond(status: 200, body: parser.head.bytes)
        } else {
            var text = Array("backend \(name) path=\(t)\n".utf8)
            if backend.options.size > text.count {
                text += [UInt8](repeating: UInt8(ascii: "."), count: backend.options.size - text.count - 1) + [10]
            }
            respond(status: 200, body: text)
        }
    }

    /// Deterministic bytes so digests are reproducible: i mod 251. Copied a 251-byte block at a time: a
    /// byte-at-a-time map took over 30 s for 64 MiB in a debug build under AddressSanitizer, longer than lb's
    /// `upstream_response` timeout, and blocked every other request to this single-threaded backend meanwhile.
    private func pattern(_ n: Int) -> [UInt8] {
        let block = (0..<251).map { UInt8($0) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(0, n))
        while bytes.count < n { bytes += block.prefix(n - bytes.count) }
        return bytes
    }

    private func respondHead(status: Int, headers: String) {
        var text = "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\nX-Backend: \(backend.options.name)\r\n"
        text += "X-Connection: \(serial)\r\n"
        text += headers
        if !parser.head.keepAlive { text += "Connection: close\r\n" }
        text += "\r\n"
        append(Array(text.utf8))
    }

    private func respond(status: Int, body: [UInt8]) {
        let isHead = parser.head.method == .head
        respondHead(status: status, headers: "Content-Type: text/plain\r\nContent-Length: \(body.count)\r\n")
        if !isHead { append(body) }
        if !parser.head.keepAlive { closeAfterFlush() }
    }

    override func didClose() {
        timer?.close()
        timer = nil
        backend.closed(self)
    }
}

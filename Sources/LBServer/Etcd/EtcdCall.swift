import LBHTTP
import LBUV

/// One HTTP/1.1 `POST` to an etcd member's gateway, on a connection of its own that closes with the call.
/// Control loop only; never blocks: connect, write and read are libuv's.
///
/// - `unary`: the whole response arrives as one `.response(status, body)`.
/// - `stream` (a watch): a 200 response's body is split into lines, each delivered as `.line` as soon as it is
///   complete; a stream that ends or fails ends with `.failed`. A non-200 answer is one `.response`.
///
/// Exactly one final event (`.response` or `.failed`) per call, on the loop thread, possibly from `cancel`. The
/// connect must finish within `dialTimeoutMs` and a unary answer within `responseTimeoutMs`; a stream has no
/// deadline once connected (etcd may rightly stay silent for as long as nothing changes).
final class EtcdCall: ByteStreamHandler {
    enum Kind { case unary, stream }

    enum Event {
        case response(status: Int, body: [UInt8])
        case line([UInt8])
        case failed(String)
    }

    private let kind: Kind
    private let request: [UInt8]
    private let socket: HandledTCPStream
    private var parser = HTTPParser(kind: .response, limits: HTTPLimits(maxBodyBytes: nil))
    private var lines = LineSplitter()
    private var status = 0
    private var body: [UInt8] = []
    /// Nil once the final event is out.
    private var onEvent: ((Event) -> Void)?
    private let timer: LoopTimer
    private let responseTimeoutMs: UInt64
    /// The call keeps itself alive until its socket reports the close (the socket points back unretained).
    private var retainedUntilClosed: EtcdCall?

    /// - Parameters:
    ///   - path: e.g. `/v3/kv/range`; `body` is its JSON.
    ///   - token: etcd's auth token, sent as `Authorization` when set.
    init(
        loop: EventLoop, endpoint: HostPort, path: String, body: [UInt8], token: String?, kind: Kind,
        dialTimeoutMs: UInt64, responseTimeoutMs: UInt64, onEvent: @escaping (Event) -> Void
    ) {
        self.kind = kind
        self.onEvent = onEvent
        self.responseTimeoutMs = responseTimeoutMs
        let host =
            endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)"
        var head = "POST \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: lb-etcd\r\nContent-Type: application/json\r\n"
        head += "Content-Length: \(body.count)\r\n"
        if let token { head += "Authorization: \(token)\r\n" }
        if kind == .unary { head += "Connection: close\r\n" }
        // A watch on a member cut off from its cluster would stay open and silent: with gRPC metadata
        // `hasleader: true` (the gateway passes `Grpc-Metadata-*` headers on) etcd cancels it when the member has no
        // leader, and lb moves to another endpoint (clientv3's WithRequireLeader).
        if kind == .stream { head += "Grpc-Metadata-Hasleader: true\r\n" }
        request = Array((head + "\r\n").utf8) + body
        socket = HandledTCPStream(loop: loop)
        var fire: (() -> Void)?
        timer = LoopTimer(loop: loop) { fire?() }
        socket.handler = self
        parser.expectResponse(to: .post)
        retainedUntilClosed = self
        fire = { [weak self] in self?.finish(.failed("timed out")) }
        timer.start(timeout: dialTimeoutMs)
    }

    /// Starts connecting to `address` (the endpoint, resolved).
    func start(address: SocketAddress) {
        address.withSockaddr { socket.connect(to: $0) }
    }

    /// Ends the call now with `.failed(reason)`; no effect once it has ended.
    func cancel(reason: String) { finish(.failed(reason)) }

    // MARK: ByteStreamHandler

    func streamConnected(_ error: UVError?) {
        guard onEvent != nil else { return }
        if let error { return finish(.failed("connect: \(error.name)")) }
        timer.start(timeout: responseTimeoutMs)  // for a stream: until its head
        socket.out.append(contentsOf: request)
        socket.flush()
        socket.startReading()
    }

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        var pos = 0
        while onEvent != nil {
            switch parser.next(bytes, &pos) {
            case .needMore:
                return
            case .head:
                status = parser.head.status
                if status < 200 { continue }  // an interim answer; the real one follows
                // A stream's deadline ends with its head: from here silence means nothing changed.
                if kind == .stream && status == 200 { timer.stop() }
            case .body(let range):
                received(UnsafeRawBufferPointer(rebasing: bytes[range]))
            case .end:
                if status < 200 { continue }
                ended()
            case .error(let e):
                finish(.failed("invalid response: \(e)"))
            }
        }
    }

    func streamReadEnd(_ error: UVError) {
        guard onEvent != nil else { return }
        if error.isEOF, case .end = parser.finish() { return ended() }
        finish(.failed(error.isEOF ? "closed by etcd" : "read: \(error.name)"))
    }

    func streamDrained() {}

    func streamClosed() {
        finish(.failed("closed"))
        retainedUntilClosed = nil
    }

    // MARK: private

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard kind == .stream && status == 200 else {
            body.append(contentsOf: bytes)
            return
        }
        guard let complete = lines.feed(bytes) else { return finish(.failed("a watch line over the size limit")) }
        for line in complete where onEvent != nil { onEvent?(.line(line)) }
    }

    private func ended() {
        if kind == .stream && status == 200 {
            finish(.failed("the watch stream ended"))
        } else {
            finish(.response(status: status, body: body))
        }
    }

    private func finish(_ event: Event) {
        guard let done = onEvent else { return }
        onEvent = nil
        timer.close()
        socket.close()
        done(event)
    }
}

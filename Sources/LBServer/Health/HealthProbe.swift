import CLibUV
import LBCore
import LBHTTP
import LBTLS
import LBUV

/// A server's health-check connection, carrying one check at a time. With the server's TLS settings it is a TLS
/// connection, verified as the proxy's are.
///
/// - `tcp`: passes when the connection is accepted (for TLS: when the handshake succeeds); the connection then
///   closes, since the connect is what is checked.
/// - `http`: sends `GET <path> HTTP/1.1` with `Host` and `User-Agent: lb-health`, and passes when the status of
///   the (first final) response head is in the expected range. The verdict comes from the head. With `reuse`
///   (`health_check.reuse_connection`) the request asks for keep-alive, the rest of the response is read, and
///   when it ends cleanly with the connection kept the connection waits for the next check (`checkAgain`): a
///   thousand servers checked every 2 s are then not 500 connects, accepts and closes a second, on lb and on
///   the servers. Without it, or when the server closes or answers `Connection: close`, each check connects anew
///   (the request then says `Connection: close`).
///
/// Exactly one `onDone` call per check, on the loop thread: from a connect/read/write result, or from
/// `cancel(reason:)` (the checker's timeout, or shutdown), which also closes the connection. The probe keeps
/// itself alive until its stream's close callback. The timeout is the checker's job (one timer per server, not
/// per probe).
final class HealthProbe: ByteStreamHandler {
    enum Mode {
        case tcp
        /// The complete request bytes and the statuses that pass.
        case http(request: [UInt8], expected: ClosedRange<Int>)
    }

    enum Outcome: Equatable {
        case passed(code: Int?)
        case failed(code: Int?, error: String)
        /// A kept connection closed before any byte of the answer (the server's keep-alive timeout met the
        /// probe): no verdict; the checker repeats the check on a new connection.
        case keptConnectionClosed
    }

    private enum Phase {
        /// A check is in progress (connecting, or waiting for the response head).
        case checking
        /// The verdict is in; the rest of the response is read so the connection can carry the next check.
        case readingRest
        /// Open, between checks, the last response read whole.
        case idle
        case closed
    }

    private var mode: Mode
    private let reuse: Bool
    private var phase = Phase.checking
    /// The check in progress went over a kept connection and no byte of its answer has come yet.
    private var awaitingOnKeptConnection = false
    private var parser = HTTPParser(kind: .response, limits: HTTPLimits(maxBodyBytes: nil))
    private var onDone: ((Outcome) -> Void)?
    private let socket: HandledTCPStream
    /// `socket`, or TLS over it.
    private let stream: any ByteStream
    private let tls: TLSStream<TLSClientSession>?
    /// Set when the TLS session could not be created: the probe fails as soon as it starts.
    private var setupFailure: String?
    /// The probe itself, from creation until its stream reports the close: the socket only points back at its
    /// handler (unretained), and the checker drops the probe when it is done with it, before the close callback
    /// has run.
    private var retainedUntilClosed: HealthProbe?

    /// - Parameter tls: the server's TLS settings and the session cache of its checks (nil: plain TCP).
    /// - Parameter reuse: keep the connection for the next check when the server allows (`http` only).
    init(
        loop: EventLoop, mode: Mode, tls: (settings: BackendTLS, sessions: TLSClientSessionCache)? = nil,
        reuse: Bool = false, onDone: @escaping (Outcome) -> Void
    ) {
        self.mode = mode
        self.reuse = reuse
        self.onDone = onDone
        socket = HandledTCPStream(loop: loop)
        var tlsStream: TLSStream<TLSClientSession>?
        if let tls {
            do {
                let session = try TLSClientSession(
                    context: tls.settings.context, serverName: tls.settings.serverName,
                    verifyName: tls.settings.verifyName, cache: tls.sessions)
                tlsStream = TLSStream(socket: socket, session: session, worker: nil)
            } catch {
                setupFailure = "TLS: \(error)"
            }
        }
        self.tls = tlsStream
        if let tlsStream {
            stream = tlsStream
            tlsStream.handler = self
        } else {
            stream = socket
            socket.handler = self
        }
        parser.expectResponse(to: .get)
        retainedUntilClosed = self
    }

    /// The connection is open and idle, the last response read whole: `checkAgain` can use it.
    var isReusable: Bool { phase == .idle && !stream.isClosing }

    /// The request an `http` probe sends. `host` is the server's configured host and port (RFC 9110 §7.2).
    /// `keepAlive`: the connection is meant for the next check too; otherwise the request says
    /// `Connection: close`.
    static func request(path: String, host: String, port: Int, keepAlive: Bool = false) -> [UInt8] {
        let hostValue = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let text = "GET \(path) HTTP/1.1\r\nHost: \(hostValue)\r\nUser-Agent: lb-health\r\nAccept: */*\r\n"
            + (keepAlive ? "\r\n" : "Connection: close\r\n\r\n")
        return Array(text.utf8)
    }

    /// Starts the connect. The result arrives through `onDone`, possibly before this returns (an immediate
    /// connect error).
    func start(address: SocketAddress) {
        if let setupFailure {
            finish(.failed(code: nil, error: setupFailure))
        } else if let tls {
            address.withSockaddr { tls.connect(to: $0) }
        } else {
            address.withSockaddr { socket.connect(to: $0) }
        }
    }

    /// The next check on this connection, which must be `isReusable`. The result arrives through `onDone`.
    func checkAgain(mode: Mode, onDone: @escaping (Outcome) -> Void) {
        self.mode = mode
        self.onDone = onDone
        phase = .checking
        awaitingOnKeptConnection = true
        parser.expectResponse(to: .get)
        guard case .http(let request, _) = mode else {
            finish(.failed(code: nil, error: "a kept connection cannot carry a tcp check"))
            return
        }
        send(request)
    }

    private func send(_ request: [UInt8]) {
        stream.out.append(contentsOf: request)
        stream.flush()
    }

    /// Ends the check in progress now with a failure (timeout, shutdown); closes the connection in every phase.
    /// No verdict is reported when none is pending.
    func cancel(reason: String) {
        finish(.failed(code: nil, error: reason))
        close()
    }

    private func close() {
        phase = .closed
        stream.close()
    }

    // MARK: ByteStreamHandler

    func streamConnected(_ error: UVError?) {
        guard onDone != nil else { return }
        if let failure = tls?.failure {
            finish(.failed(code: nil, error: "TLS handshake: \(failure)"))
            return
        }
        if let error {
            finish(.failed(code: nil, error: "connect: \(error.name)"))
            return
        }
        switch mode {
        case .tcp:
            finish(.passed(code: nil))
        case .http(let request, _):
            send(request)
            stream.startReading()
        }
    }

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        awaitingOnKeptConnection = false
        var pos = 0
        while phase == .checking || phase == .readingRest {
            switch parser.next(bytes, &pos) {
            case .needMore:
                return
            case .head:
                let status = parser.head.status
                // An interim 1xx (other than 101) is followed by the real answer.
                if status < 200 && status != 101 { continue }
                guard phase == .checking else { continue }
                judge(status: status)
                guard phase == .checking else { return }  // closed by the verdict
                // Kept for the next check: the rest of this response must be read first.
                phase = .readingRest
            case .body:
                continue
            case .end:
                if phase == .checking { continue }  // a 1xx's end; the final head follows
                // Anything after the response is not an answer to anything: the connection is not reused.
                if pos == bytes.count { phase = .idle } else { close() }
                return
            case .error(let e):
                finish(.failed(code: nil, error: "invalid response: \(e)"))  // after a verdict: no report
                close()
                return
            }
        }
        // Idle: bytes nobody asked for. The connection is not trusted with another check.
        if phase == .idle { close() }
    }

    func streamReadEnd(_ error: UVError) {
        // Between checks the server may close a kept connection (its keep-alive timeout): the next check
        // connects anew.
        let reason = error.isEOF ? "closed before a response" : "read: \(error.name)"
        finish(awaitingOnKeptConnection ? .keptConnectionClosed : .failed(code: nil, error: reason))
        close()
    }

    func streamDrained() {}

    func streamClosed() {
        // Closed without a verdict (a failed write closes the stream with no other report): a probe never stays
        // silent.
        phase = .closed
        finish(awaitingOnKeptConnection ? .keptConnectionClosed : .failed(code: nil, error: "closed"))
        retainedUntilClosed = nil
    }

    // MARK: verdict

    /// The verdict on a final response head. The connection stays open (phase `checking`, which the caller
    /// turns into reading the rest) only when it may carry the next check.
    private func judge(status: Int) {
        guard case .http(_, let expected) = mode else { return }
        let keep = reuse && parser.head.keepAlive && status != 101
        if !keep { close() }
        if expected.contains(status) {
            finish(.passed(code: status))
        } else {
            let range = "\(expected.lowerBound)-\(expected.upperBound)"
            finish(.failed(code: status, error: "status \(status) not in \(range)"))
        }
    }

    /// Reports `outcome` once per check. A failed check's connection closes with its verdict (the next check
    /// of a failing server connects anew), as does a `tcp` check's.
    private func finish(_ outcome: Outcome) {
        guard let done = onDone else { return }
        onDone = nil
        switch (mode, outcome) {
        case (.tcp, _), (_, .failed), (_, .keptConnectionClosed): close()
        default: break
        }
        done(outcome)
    }
}

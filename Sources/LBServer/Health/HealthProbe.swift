import CLibUV
import LBCore
import LBHTTP
import LBTLS
import LBUV

/// One active health check: a fresh connection to one server, closed as soon as the verdict is known. With the
/// server's TLS settings it is a TLS connection, verified as the proxy's are.
///
/// - `tcp`: passes when the connection is accepted (for TLS: when the handshake succeeds).
/// - `http`: sends `GET <path> HTTP/1.1` with `Host`, `Connection: close` and `User-Agent: lb-health`, and
///   passes when the status of the (first final) response head is in the expected range. The body is not
///   read: the verdict comes from the head, then the connection is closed.
///
/// Exactly one `onDone` call per probe, on the loop thread: from a connect/read/write result, or from
/// `cancel(reason:)` (the checker's timeout, or shutdown). The probe then closes itself; its handle keeps
/// it alive until the close callback. The timeout is the checker's job (one timer per server, not per probe).
final class HealthProbe: ByteStreamHandler {
    enum Mode {
        case tcp
        /// The complete request bytes and the statuses that pass.
        case http(request: [UInt8], expected: ClosedRange<Int>)
    }

    enum Outcome: Equatable {
        case passed(code: Int?)
        case failed(code: Int?, error: String)
    }

    private let mode: Mode
    private var parser = HTTPParser(kind: .response, limits: HTTPLimits(maxBodyBytes: nil))
    private var onDone: ((Outcome) -> Void)?
    private let socket: HandledTCPStream
    /// `socket`, or TLS over it.
    private let stream: any ByteStream
    private let tls: TLSStream<TLSClientSession>?
    /// Set when the TLS session could not be created: the probe fails as soon as it starts.
    private var setupFailure: String?
    /// The probe itself, from creation until its stream reports the close: the socket only points back at its
    /// handler (unretained), and the checker drops the probe as soon as the verdict is in, before the close
    /// callback has run.
    private var retainedUntilClosed: HealthProbe?

    /// - Parameter tls: the server's TLS settings and the session cache of its checks (nil: plain TCP).
    init(
        loop: EventLoop, mode: Mode, tls: (settings: BackendTLS, sessions: TLSClientSessionCache)? = nil,
        onDone: @escaping (Outcome) -> Void
    ) {
        self.mode = mode
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

    /// The request an `http` probe sends. `host` is the server's configured host and port (RFC 9110 §7.2).
    static func request(path: String, host: String, port: Int) -> [UInt8] {
        let hostValue = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let text = "GET \(path) HTTP/1.1\r\nHost: \(hostValue)\r\nUser-Agent: lb-health\r\nAccept: */*\r\n"
            + "Connection: close\r\n\r\n"
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

    /// Ends the probe now with a failure (timeout, shutdown). No effect once the verdict is in.
    func cancel(reason: String) {
        finish(.failed(code: nil, error: reason))
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
            stream.out.append(contentsOf: request)
            stream.flush()
            stream.startReading()
        }
    }

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        var pos = 0
        while onDone != nil {
            switch parser.next(bytes, &pos) {
            case .needMore:
                return
            case .head:
                let status = parser.head.status
                // An interim 1xx (other than 101) is followed by the real answer.
                if status < 200 && status != 101 { continue }
                judge(status: status)
                return
            case .body, .end:
                continue
            case .error(let e):
                finish(.failed(code: nil, error: "invalid response: \(e)"))
                return
            }
        }
    }

    func streamReadEnd(_ error: UVError) {
        let reason = error.isEOF ? "closed before a response" : "read: \(error.name)"
        finish(.failed(code: nil, error: reason))
    }

    func streamDrained() {}

    func streamClosed() {
        // Closed without a verdict (a failed write closes the stream with no other report): a probe never stays
        // silent.
        finish(.failed(code: nil, error: "closed"))
        retainedUntilClosed = nil
    }

    // MARK: verdict

    private func judge(status: Int) {
        guard case .http(_, let expected) = mode else { return }
        if expected.contains(status) {
            finish(.passed(code: status))
        } else {
            let range = "\(expected.lowerBound)-\(expected.upperBound)"
            finish(.failed(code: status, error: "status \(status) not in \(range)"))
        }
    }

    private func finish(_ outcome: Outcome) {
        guard let done = onDone else { return }
        onDone = nil
        stream.close()
        done(outcome)
    }
}

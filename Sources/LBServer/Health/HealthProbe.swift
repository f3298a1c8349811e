import CLibUV
import LBCore
import LBHTTP
import LBUV

/// One active health check: a fresh TCP connection to one server, closed as soon as the verdict is known.
///
/// - `tcp`: passes when the connection is accepted.
/// - `http`: sends `GET <path> HTTP/1.1` with `Host`, `Connection: close` and `User-Agent: lb-health`, and
///   passes when the status of the (first final) response head is in the expected range. The body is not
///   read: the verdict comes from the head, then the connection is closed.
///
/// Exactly one `onDone` call per probe, on the loop thread: from a connect/read/write result, or from
/// `cancel(reason:)` (the checker's timeout, or shutdown). The probe then closes itself; its handle keeps
/// it alive until the close callback. The timeout is the checker's job (one timer per server, not per probe).
final class HealthProbe: TCPConnection {
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

    init(loop: EventLoop, mode: Mode, onDone: @escaping (Outcome) -> Void) {
        self.mode = mode
        self.onDone = onDone
        super.init(loop: loop)
        parser.expectResponse(to: .get)
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
        address.withSockaddr { connect(to: $0) }
    }

    /// Ends the probe now with a failure (timeout, shutdown). No effect once the verdict is in.
    func cancel(reason: String) {
        finish(.failed(code: nil, error: reason))
    }

    // MARK: TCPConnection hooks

    override func didConnectResult(_ status: Int32) {
        guard onDone != nil else { return }
        if status < 0 {
            finish(.failed(code: nil, error: "connect: \(UVError(status).name)"))
            return
        }
        switch mode {
        case .tcp:
            finish(.passed(code: nil))
        case .http(let request, _):
            append(request)
            flush()
            startReading()
        }
    }

    override func didRead(_ bytes: UnsafeRawBufferPointer) {
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

    override func didReadEnd(_ error: UVError) {
        let reason = error.isEOF ? "closed before a response" : "read: \(error.name)"
        finish(.failed(code: nil, error: reason))
    }

    override func didFailWrite(_ error: UVError) {
        finish(.failed(code: nil, error: "write: \(error.name)"))
    }

    override func didClose() {
        // Closed without a verdict (cannot happen through the paths above, but a probe never stays silent).
        finish(.failed(code: nil, error: "closed"))
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
        close()
        done(outcome)
    }
}

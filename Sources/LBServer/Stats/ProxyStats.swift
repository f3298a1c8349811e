import LBTLS

/// What the proxy counts per worker, on the loop thread, with plain integers (issue: counting must not slow
/// the hot path). Aggregated across workers on read (`StatsSnapshot`).

/// Why an exchange ended, for the access log and stats.
enum TerminationCause: UInt8, CaseIterable {
    case ok
    /// The proxy answered itself (4xx/5xx it generated: bad request, no server, timeout...).
    case proxyResponse
    /// The client went away before the response was complete.
    case clientAborted
    /// The backend failed after part of the response had gone out.
    case upstreamAborted

    var name: StaticString {
        switch self {
        case .ok: return "ok"
        case .proxyResponse: return "proxy"
        case .clientAborted: return "client-abort"
        case .upstreamAborted: return "upstream-abort"
        }
    }
}

/// Statuses the proxy generates itself, counted by cause.
enum ProxyErrorCause: Int, CaseIterable {
    case badRequest, methodNotAllowed, timeout, tooLarge, uriTooLong, headersTooLarge, notImplemented,
        badGateway, unavailable, gatewayTimeout, versionNotSupported, other

    init(status: Int) {
        switch status {
        case 400: self = .badRequest
        case 405: self = .methodNotAllowed
        case 408: self = .timeout
        case 413: self = .tooLarge
        case 414: self = .uriTooLong
        case 431: self = .headersTooLarge
        case 501: self = .notImplemented
        case 502: self = .badGateway
        case 503: self = .unavailable
        case 504: self = .gatewayTimeout
        case 505: self = .versionNotSupported
        default: self = .other
        }
    }

    var status: Int {
        switch self {
        case .badRequest: return 400
        case .methodNotAllowed: return 405
        case .timeout: return 408
        case .tooLarge: return 413
        case .uriTooLong: return 414
        case .headersTooLarge: return 431
        case .notImplemented: return 501
        case .badGateway: return 502
        case .unavailable: return 503
        case .gatewayTimeout: return 504
        case .versionNotSupported: return 505
        case .other: return 500
        }
    }
}

/// Five counters, one per status class (index 0 = 1xx ... 4 = 5xx).
struct ClassCounts {
    var counts = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))

    @inline(__always)
    mutating func count(_ status: Int) {
        switch status / 100 {
        case 1: counts.0 &+= 1
        case 2: counts.1 &+= 1
        case 3: counts.2 &+= 1
        case 4: counts.3 &+= 1
        default: counts.4 &+= 1
        }
    }

    /// The class names as the admin API and metrics spell them, in index order.
    static let names = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    var array: [UInt64] { [counts.0, counts.1, counts.2, counts.3, counts.4] }

    /// `{"1xx": n, ..., "5xx": n}` for the JSON APIs.
    var json: [String: UInt64] { Dictionary(uniqueKeysWithValues: zip(ClassCounts.names, array)) }

    mutating func add(_ o: ClassCounts) {
        counts.0 &+= o.counts.0
        counts.1 &+= o.counts.1
        counts.2 &+= o.counts.2
        counts.3 &+= o.counts.3
        counts.4 &+= o.counts.4
    }
}

/// One worker's counters for one backend.
struct BackendCounters {
    // Written by every request, so first and together (the slot is a cold object with many servers):
    var requests: UInt64 = 0
    var responses = ClassCounts()
    /// Pooled connections handed to a request.
    var reused: UInt64 = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    /// Response time (request sent → response head) of requests to this server.
    var responseLatency = Latency()
    var connectsOpened: UInt64 = 0
    var peakConnections = 0
    var connectErrors: UInt64 = 0
    var responseErrors: UInt64 = 0
    /// Idle connections the pool's purge closed (more were idle than recent demand needed).
    var purged: UInt64 = 0
    /// Reusable connections closed at the end of a response because the pool was at `limits.upstream_pool_size`.
    var poolFull: UInt64 = 0
    /// `max_connections`: requests that waited in the server's queue, that waited `timeouts.queue` and got 503,
    /// and that found the queue full (503 at once); the longest the queue got on one worker.
    var queued: UInt64 = 0
    var queueTimeouts: UInt64 = 0
    var queueFull: UInt64 = 0
    var peakQueue = 0
    /// Times the server shed a connection and this worker set or lowered its learnt limit
    /// (`limits.learn_server_limits`).
    var limitsLearnt: UInt64 = 0
    /// Requests sent again after a failure once sent (retries: to another server, or back to this one after it
    /// shed the connection) or moved away before (redispatches).
    var retries: UInt64 = 0
    var redispatches: UInt64 = 0
    /// TLS to the server: handshakes completed (and how many resumed a session), handshakes refused because the
    /// server's certificate did not verify, and handshakes that failed otherwise.
    var tlsHandshakes: UInt64 = 0
    var tlsResumed: UInt64 = 0
    var tlsCertificateRejections: UInt64 = 0
    var tlsHandshakeFailures: UInt64 = 0
    /// TCP connect time of connections to this server.
    var connectLatency = Latency()
}

/// One worker's global counters.
struct WorkerCounters {
    var connectionsTotal: UInt64 = 0
    /// Closed at accept: over `limits.max_client_connections` (or while draining).
    var connectionsRefused: UInt64 = 0
    /// Closed at accept: the client's address already held `limits.max_connections_per_client`.
    var connectionsRefusedPerClient: UInt64 = 0
    /// Client connections closed by `timeouts.client_header` (a head, or a TLS handshake, not complete in time:
    /// slowloris), by `timeouts.client_idle` (nothing sent), and by `timeouts.client_send` (a response the client
    /// stopped reading).
    var headerTimeouts: UInt64 = 0
    var idleTimeouts: UInt64 = 0
    var sendTimeouts: UInt64 = 0
    /// Times a client's socket was full and its backend was paused until the client read what lb held for it
    /// (slow readers): how often back-pressure, not memory, absorbed a response.
    var slowReaderPauses: UInt64 = 0
    /// Exchanges the client ended (closed or reset its connection) before the response was complete, and of
    /// those, the ones whose request body was not complete either (an upload cut short).
    var clientAborts: UInt64 = 0
    var uploadsAborted: UInt64 = 0
    var acceptErrors: UInt64 = 0
    var requests: UInt64 = 0
    var inFlight = 0
    var noServer: UInt64 = 0
    /// Picks made by panic routing (`health_check.panic`): no server that could take the request was up, so it
    /// went by its hash to a down one. Each attempt counts (a retry in panic counts again), as Envoy counts
    /// `lb_healthy_panic`.
    var panicRouted: UInt64 = 0
    /// Most upstream connections this worker had open at once, over every backend (a gauge's peak, not carried
    /// across a hot upgrade). Each backend's `peakConnections` is reached at its own moment, so their sum is no
    /// measure of the connections open together.
    var upstreamPeak = 0
    var keyFallbacks: UInt64 = 0
    var responses = ClassCounts()
    var proxyErrors = [UInt64](repeating: 0, count: ProxyErrorCause.allCases.count)
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    /// TLS handshakes that failed and records that did not decrypt (the connection was closed).
    var tlsFailures: UInt64 = 0
    /// The handshakes of `tlsFailures` refused over the client's certificate, by
    /// `TLSClientCertificateRefusal.rawValue`.
    var clientCertificateRefusals = [UInt64](repeating: 0, count: TLSClientCertificateRefusal.allCases.count)
    /// `tlsFailures` by `TLSFailureReason.rawValue`.
    var tlsFailureReasons = [UInt64](repeating: 0, count: TLSFailureReason.allCases.count)
    /// New TLS connections left in the kernel's accept queue for a while by the handshake limits:
    /// [0] `tls_handshakes_per_turn`, [1] `tls_handshakes_per_second`.
    var tlsAcceptsDeferred: (perTurn: UInt64, perSecond: UInt64) = (0, 0)
    /// New plain connections left in the kernel's accept queue for the next turn by `limits.accepts_per_turn`.
    var acceptsDeferred: UInt64 = 0
    /// Whole-request time (head received → response complete), for `lb_request_duration_seconds`.
    var requestLatency = Latency()
    /// Client connections that spoke HTTP/1.x (decided at their first bytes: not the h2c preface, not ALPN h2).
    var http1Connections: UInt64 = 0
    var h2 = H2Counters()
}

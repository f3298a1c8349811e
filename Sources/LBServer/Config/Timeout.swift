/// Every timeout of the `timeouts` object, the one list of them: each case is a config key, and `spec` gives its
/// default and the connection phase it governs. Loading (`ConfigLoader.readTimeouts`), the stored values
/// (`LBConfig.Timeouts`), the timer's limits (`ConnectionTimer.Limits`) and the unknown-key check all walk
/// `allCases`, so a timeout added here is read, validated, defaulted and enforced with no other list to update.
///
/// Every timeout is a duration (`ConfigDuration`: at least 1 ms, at most a week); there is no "0 = off", since
/// each must fire eventually. The README's configuration table documents each key with this default.
public enum Timeout: String, CaseIterable, Sendable {
    /// From accept (or the end of the previous response) until the request head is complete.
    case clientHeader = "client_header"
    /// A keep-alive client connection with no request in flight.
    case clientIdle = "client_idle"
    /// A client that takes none of its response while its socket is full and lb holds bytes for it (and has
    /// paused the backend): from the pause, and from each completed write after it.
    case clientSend = "client_send"
    /// Establishing a TCP connection to a backend.
    case upstreamConnect = "upstream_connect"
    /// From the request being sent until the response head arrives.
    case upstreamResponse = "upstream_response"
    /// A pooled idle upstream connection before it is closed.
    case upstreamIdle = "upstream_idle"
    /// The interval of the idle pools' purge: each interval, half the idle connections beyond what the recent peak
    /// of demand needs are closed (`PoolDemand`).
    case upstreamPoolPurge = "upstream_pool_purge"
    /// An upgraded (WebSocket / CONNECT-style) tunnel with no bytes either way.
    case tunnelIdle = "tunnel_idle"
    /// On SIGTERM: how long in-flight requests may finish before connections are closed.
    case shutdownGrace = "shutdown_grace"
    /// A request waiting in a server's queue (the server is at its `max_connections`); then it is answered 503.
    case queue

    /// The key in the `timeouts` object.
    public var key: String { rawValue }

    /// The default in milliseconds.
    public var defaultMs: UInt64 { spec.defaultMs }

    /// The `ConnectionTimer` phase this timeout bounds; nil for one that is not a connection's (shutdown, purge).
    var phase: ConnectionTimer.Phase? { spec.phase }

    /// One row per timeout.
    private var spec: (defaultMs: UInt64, phase: ConnectionTimer.Phase?) {
        switch self {
        case .clientHeader: (10_000, .clientHeader)
        case .clientIdle: (60_000, .clientIdle)
        case .clientSend: (60_000, .clientSend)
        case .upstreamConnect: (3_000, .upstreamConnect)
        case .upstreamResponse: (30_000, .upstreamResponse)
        case .upstreamIdle: (60_000, .upstreamIdle)
        case .upstreamPoolPurge: (5_000, nil)
        case .tunnelIdle: (300_000, .tunnelIdle)
        case .shutdownGrace: (10_000, nil)
        case .queue: (5_000, nil)
        }
    }
}

/// The cases are the keys of the `timeouts` object.
extension Timeout: ConfigKey {}

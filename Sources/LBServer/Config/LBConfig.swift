import LBCore
import LBHTTP

/// The balancer's whole configuration, after validation. Every field has the default documented in
/// the README's "Configuration" section, so `LBConfig()` is a working config with no servers (which answers 503).
///
/// Build one with `ConfigLoader` (file), `applying(_:)` (flags) and `withAdminToken(fromEnvironment:)` (env),
/// or all three at once with `LBConfig.resolve(configPath:overrides:)`.
/// Durations are whole milliseconds (`UInt64`), the unit libuv timers take.
public struct LBConfig: Equatable, Sendable {
    /// Where clients connect (`listen`): one plain HTTP listener, unless `listeners` is given.
    public var listen: HostPort
    /// Several listeners, each plain or TLS (`listeners`); empty means the one on `listen`.
    public var listeners: [Listener] = []
    /// Event-loop threads (`workers`).
    public var workers: WorkerCount
    /// The admin API (`admin`).
    public var admin: Admin
    /// Algorithm, hash and table parameters (`routing.algorithm`, `.hash`, `.vnodes`, `.maglev_table_size`,
    /// `.bounded_load`), in the shape the routing tables take.
    public var routing: RoutingConfig
    /// What is hashed (`routing.key`).
    public var routingKey: KeySource
    /// Backends in file order (`servers`). Ids are unique; algorithms key on `id`, never on position.
    public var servers: [ServerSpec]
    /// Where the servers come from and where runtime changes to them persist (`server_source`).
    public var serverSource = ServerSource()
    /// Active and passive health checking for every server without an override (`health_check`).
    public var healthCheck: HealthCheck
    /// Effective health-check settings for servers that have a `health_check` object of their own, by server id:
    /// the global settings with that server's keys laid over them. Use `healthCheck(forServer:)`.
    public var serverHealthChecks: [String: HealthCheck]
    /// TLS to every server without an override of its own (`upstream_tls`); nil: plain TCP.
    public var upstreamTLS: UpstreamTLS?
    /// Servers whose `tls` key overrides `upstreamTLS`, by id: their effective settings, nil for `"tls": false`.
    /// Use `upstreamTLS(forServer:)`.
    public var serverTLS: [String: UpstreamTLS?] = [:]
    /// Servers with their own `max_connections` / `max_queue`, by id. Use `connectionLimit(forServer:)`.
    public var serverLimits: [String: ServerLimitOverride] = [:]
    /// Retry policy (`retries`).
    public var retries: Retries
    /// Timeouts (`timeouts`).
    public var timeouts: Timeouts
    /// Size and count limits (`limits`).
    public var limits: Limits
    /// Which forwarding headers are added (`forwarding`).
    public var forwarding: Forwarding
    /// Access logging (`access_log`).
    public var accessLog: AccessLog
    /// What the data path measures (`stats`).
    public var stats = Stats()
    /// Empty non-blocking polls an event loop makes before it sleeps (`busy_polls`); 0 = sleep at once.
    public var busyPolls = 0
    /// Wake-up coalescing: how long an event loop under load sleeps to collect events (`coalesce_us`); 0 = off.
    public var coalesceMicros = 200

    public init(
        listen: HostPort = HostPort(host: "0.0.0.0", port: 8080),
        workers: WorkerCount = .count(1),
        admin: Admin = Admin(),
        routing: RoutingConfig = RoutingConfig(),
        routingKey: KeySource = .path,
        servers: [ServerSpec] = [],
        healthCheck: HealthCheck = HealthCheck(),
        serverHealthChecks: [String: HealthCheck] = [:],
        retries: Retries = Retries(),
        timeouts: Timeouts = Timeouts(),
        limits: Limits = Limits(),
        forwarding: Forwarding = Forwarding(),
        accessLog: AccessLog = AccessLog()
    ) {
        self.listen = listen
        self.workers = workers
        self.admin = admin
        self.routing = routing
        self.routingKey = routingKey
        self.servers = servers
        self.healthCheck = healthCheck
        self.serverHealthChecks = serverHealthChecks
        self.retries = retries
        self.timeouts = timeouts
        self.limits = limits
        self.forwarding = forwarding
        self.accessLog = accessLog
    }

    /// The health-check settings that apply to the server with this id.
    public func healthCheck(forServer id: String) -> HealthCheck { serverHealthChecks[id] ?? healthCheck }

    /// `workers`: a fixed count, or `"auto"` for one per core.
    public enum WorkerCount: Hashable, Sendable, CustomStringConvertible {
        case auto
        case count(Int)

        /// The number of loops to start; `cores` is normally `ProcessInfo.processInfo.activeProcessorCount`.
        public func resolved(cores: Int) -> Int {
            switch self {
            case .auto: max(1, cores)
            case .count(let n): n
            }
        }

        public var description: String {
            switch self {
            case .auto: "auto"
            case .count(let n): "\(n)"
            }
        }
    }

    /// `admin`: the admin API's address and bearer token.
    public struct Admin: Equatable, Sendable {
        public var listen: HostPort
        /// Required as `Authorization: Bearer <token>` when set; nil = no authentication (bind to loopback then).
        /// `LB_ADMIN_TOKEN` overrides it; see `withAdminToken(fromEnvironment:)`.
        public var token: String?

        public init(listen: HostPort = HostPort(host: "127.0.0.1", port: 8081), token: String? = nil) {
            self.listen = listen
            self.token = token
        }
    }

    /// `retries`: how often a failed upstream attempt is retried on another backend.
    public struct Retries: Equatable, Sendable {
        /// Extra attempts after the first; 0 = no retries.
        public var max: Int
        /// Budget for one attempt (connect through the response head).
        public var perTryTimeoutMs: UInt64

        public init(max: Int = 2, perTryTimeoutMs: UInt64 = 30_000) {
            self.max = max
            self.perTryTimeoutMs = perTryTimeoutMs
        }
    }

    /// `forwarding`: request headers the balancer adds before forwarding (the HTTP layer's own options type).
    public typealias Forwarding = ForwardingOptions

    /// `stats`: counters are always kept (plain integers per worker); latency histograms can be switched off.
    public struct Stats: Equatable, Sendable {
        /// Connect, response and request latency histograms (two clock reads and three histogram updates per
        /// request).
        public var latency = true
        public init(latency: Bool = true) { self.latency = latency }
    }

    /// `access_log`: one line per request.
    public struct AccessLog: Equatable, Sendable {
        public enum Format: String, CaseIterable, Sendable {
            case off, common, json
        }

        public var format: Format
        /// A file path, or "-" for standard output.
        public var path: String

        public init(format: Format = .off, path: String = "-") {
            self.format = format
            self.path = path
        }

        /// True when `path` is "-".
        public var isStandardOutput: Bool { path == "-" }
    }
}

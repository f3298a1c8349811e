extension LBConfig {
    /// `timeouts`: one duration in milliseconds (> 0) per `Timeout`, each its default until set.
    public struct Timeouts: Equatable, Sendable {
        private var ms = Dictionary(uniqueKeysWithValues: Timeout.allCases.map { ($0, $0.defaultMs) })

        /// Every timeout at its default.
        public init() {}

        public subscript(timeout: Timeout) -> UInt64 {
            get { ms[timeout] ?? timeout.defaultMs }
            set { ms[timeout] = newValue }
        }
    }

    /// A server's own `max_connections` / `max_queue`; nil fields fall back to `limits`.
    public struct ServerLimitOverride: Equatable, Sendable {
        public var maxConnections: Int?
        public var maxQueue: Int?
        public init(maxConnections: Int? = nil, maxQueue: Int? = nil) {
            self.maxConnections = maxConnections
            self.maxQueue = maxQueue
        }
    }

    /// The effective connection limit of one server: requests in flight at once, and how many may wait.
    public struct ServerLimit: Equatable, Sendable {
        public var maxConnections: Int
        public var maxQueue: Int
    }

    /// The connection limit of the server with this id; nil when it has none.
    public func connectionLimit(forServer id: String) -> ServerLimit? {
        let own = serverLimits[id]
        guard let max = own?.maxConnections ?? limits.serverMaxConnections else { return nil }
        return ServerLimit(maxConnections: max, maxQueue: own?.maxQueue ?? limits.serverMaxQueue)
    }

    /// `limits`: sizes in bytes and counts, all ≥ 1 (or nil where that means no limit).
    public struct Limits: Equatable, Sendable {
        /// Longest request line; longer gets 414.
        public var maxRequestLine: Int
        /// Total size of the header section; larger gets 431.
        public var maxHeaderBytes: Int
        /// Number of header fields; more gets 431.
        public var maxHeaders: Int
        /// Largest request body; larger gets 413. nil = unlimited (bodies are streamed, not buffered).
        public var maxBodyBytes: Int?
        /// Open client connections per worker; a connection beyond it is closed at once.
        public var maxClientConnections: Int
        /// Open client connections per client address (an IPv6 client by its /64), over every worker; a connection
        /// beyond it is closed at once. nil = no limit.
        public var maxConnectionsPerClient: Int? = nil
        /// A fixed cap on the idle keep-alive connections kept per backend per worker. nil = no fixed cap: the
        /// pool keeps what recent demand needed and the purge (`timeouts.upstream_pool_purge`) trims the rest.
        public var upstreamPoolSize: Int?
        /// New plain (not TLS) connections a worker accepts in one event-loop turn; the rest wait in the kernel's
        /// accept queue for the next turn. nil = no cap.
        public var acceptsPerTurn: Int? = 32
        /// New TLS connections a worker accepts in one event-loop turn (each is a handshake to come); the rest wait
        /// in the kernel's accept queue for the next turn. nil = no cap.
        public var tlsHandshakesPerTurn: Int? = 32
        /// New TLS connections accepted per second over the whole process (HAProxy's `maxsslrate`), split
        /// evenly between workers; nil = no cap.
        public var tlsHandshakesPerSecond: Int? = nil
        /// Streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); a reset stream
        /// counts until its backend request is really gone.
        public var http2MaxConcurrentStreams: Int = 100
        /// Requests in flight to one server at once, over every worker (HAProxy's `maxconn`), for servers without
        /// a `max_connections` of their own; nil = no limit. A request over it waits in the server's queue.
        public var serverMaxConnections: Int? = nil
        /// Requests that may wait for a server at its `max_connections` (HAProxy's `maxqueue`); beyond it a
        /// request is answered 503 at once. Servers may set their own `max_queue`.
        public var serverMaxQueue: Int = 1024
        /// A server that closes, unanswered, connections lb has just connected or pooled while a worker holds 64 or
        /// more open to it is out of connections: that worker then holds its requests to the server below what it
        /// has open and queues the rest (`WorkerBackend.backendShed`), instead of opening connections the server
        /// leaves in its accept queue.
        public var learnServerLimits = true

        public init(
            maxRequestLine: Int = 8192, maxHeaderBytes: Int = 65536, maxHeaders: Int = 100, maxBodyBytes: Int? = nil,
            maxClientConnections: Int = 10_000, upstreamPoolSize: Int? = nil
        ) {
            self.maxRequestLine = maxRequestLine
            self.maxHeaderBytes = maxHeaderBytes
            self.maxHeaders = maxHeaders
            self.maxBodyBytes = maxBodyBytes
            self.maxClientConnections = maxClientConnections
            self.upstreamPoolSize = upstreamPoolSize
        }
    }
}

extension LBConfig {
    /// `timeouts`, all in milliseconds and all > 0.
    public struct Timeouts: Equatable, Sendable {
        /// From accept (or the end of the previous response) until the request head is complete.
        public var clientHeaderMs: UInt64
        /// A keep-alive client connection with no request in flight.
        public var clientIdleMs: UInt64
        /// Establishing a TCP connection to a backend.
        public var upstreamConnectMs: UInt64
        /// From the request being sent until the response head arrives.
        public var upstreamResponseMs: UInt64
        /// A pooled idle upstream connection before it is closed.
        public var upstreamIdleMs: UInt64
        /// An upgraded (WebSocket / CONNECT-style) tunnel with no bytes either way.
        public var tunnelIdleMs: UInt64
        /// On SIGTERM: how long in-flight requests may finish before connections are closed.
        public var shutdownGraceMs: UInt64

        public init(
            clientHeaderMs: UInt64 = 10_000, clientIdleMs: UInt64 = 60_000, upstreamConnectMs: UInt64 = 3_000,
            upstreamResponseMs: UInt64 = 30_000, upstreamIdleMs: UInt64 = 60_000, tunnelIdleMs: UInt64 = 300_000,
            shutdownGraceMs: UInt64 = 10_000
        ) {
            self.clientHeaderMs = clientHeaderMs
            self.clientIdleMs = clientIdleMs
            self.upstreamConnectMs = upstreamConnectMs
            self.upstreamResponseMs = upstreamResponseMs
            self.upstreamIdleMs = upstreamIdleMs
            self.tunnelIdleMs = tunnelIdleMs
            self.shutdownGraceMs = shutdownGraceMs
        }
    }

    /// `limits`: sizes in bytes and counts, all ≥ 1.
    public struct Limits: Equatable, Sendable {
        /// Longest request line; longer gets 414.
        public var maxRequestLine: Int
        /// Total size of the header section; larger gets 431.
        public var maxHeaderBytes: Int
        /// Number of header fields; more gets 431.
        public var maxHeaders: Int
        /// Largest request body; larger gets 413. nil = unlimited (bodies are streamed, not buffered).
        public var maxBodyBytes: Int?
        /// Open client connections per process; further accepts wait.
        public var maxClientConnections: Int
        /// Idle keep-alive connections kept per backend per worker.
        public var upstreamPoolSize: Int

        public init(
            maxRequestLine: Int = 8192, maxHeaderBytes: Int = 65536, maxHeaders: Int = 100, maxBodyBytes: Int? = nil,
            maxClientConnections: Int = 10_000, upstreamPoolSize: Int = 64
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

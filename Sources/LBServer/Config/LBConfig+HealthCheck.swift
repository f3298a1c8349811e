extension LBConfig {
    /// `health_check`: active probes plus passive failure counting.
    public struct HealthCheck: Equatable, Sendable {
        public enum Kind: String, CaseIterable, Sendable {
            /// `GET path`, healthy when the status is in `expectedStatus`.
            case http
            /// Healthy when a TCP connection is accepted.
            case tcp
        }

        /// Active probes on or off; passive counting is governed by `passiveFailures` alone.
        public var enabled: Bool
        public var type: Kind
        /// Request path for `http` probes; starts with "/".
        public var path: String
        public var intervalMs: UInt64
        public var timeoutMs: UInt64
        /// Consecutive successes that bring a down server up.
        public var rise: Int
        /// Consecutive failures that take an up server down.
        public var fall: Int
        /// Statuses that count as healthy for `http` probes.
        public var expectedStatus: ClosedRange<Int>
        /// Consecutive proxied-request failures (connect error, reset, timeout) that mark a server down;
        /// 0 = passive checking off.
        public var passiveFailures: Int
        /// Panic routing (`health_check.panic`, top level only): when every server that could take a request is
        /// down by health, the request goes by its hash to those down servers instead of being answered 503 at
        /// once. A balancer that marks every server down from passive failures under overload would otherwise
        /// turn the overload into a total outage.
        public var panic: Bool
        /// `http` checks keep their connection for the next check when the server keeps it alive
        /// (`reuse_connection`): no connect, accept and close per check on either side. A server whose
        /// established connections still answer while it accepts no new ones passes such checks; passive
        /// checking sees its connect failures.
        public var reuseConnection: Bool

        public init(
            enabled: Bool = true, type: Kind = .http, path: String = "/health", intervalMs: UInt64 = 2000,
            timeoutMs: UInt64 = 1000, rise: Int = 2, fall: Int = 3, expectedStatus: ClosedRange<Int> = 200...399,
            passiveFailures: Int = 3, panic: Bool = true, reuseConnection: Bool = true
        ) {
            self.enabled = enabled
            self.type = type
            self.path = path
            self.intervalMs = intervalMs
            self.timeoutMs = timeoutMs
            self.rise = rise
            self.fall = fall
            self.expectedStatus = expectedStatus
            self.passiveFailures = passiveFailures
            self.panic = panic
            self.reuseConnection = reuseConnection
        }
    }
}

import LBCore

/// Readers for the sections other than `servers`. Each starts from the defaults and overlays what is written.
extension ConfigLoader {
    enum RoutingKey: String, ConfigKey {
        case algorithm, hash, key, vnodes, ringProbes = "ring_probes", maglevTableSize = "maglev_table_size"
        case boundedLoad = "bounded_load"
    }

    /// The keys of `health_check`, global or a server's override.
    enum HealthCheckKey: String, ConfigKey {
        case enabled, type, path, interval, timeout, rise, fall, expectedStatus = "expected_status"
        case passiveFailures = "passive_failures", reuseConnection = "reuse_connection"
        /// Top level only: a server's override cannot set it (`readServers` says so).
        case panic
    }

    enum LimitKey: String, ConfigKey {
        case maxRequestLine = "max_request_line", maxHeaderBytes = "max_header_bytes", maxHeaders = "max_headers"
        case maxBodyBytes = "max_body_bytes", maxClientConnections = "max_client_connections"
        case maxConnectionsPerClient = "max_connections_per_client"
        case upstreamPoolSize = "upstream_pool_size"
        case tlsHandshakesPerTurn = "tls_handshakes_per_turn", tlsHandshakesPerSecond = "tls_handshakes_per_second"
        case acceptsPerTurn = "accepts_per_turn"
        case http2MaxConcurrentStreams = "http2_max_concurrent_streams"
        case serverMaxConnections = "server_max_connections", serverMaxQueue = "server_max_queue"
        case learnServerLimits = "learn_server_limits"
    }

    enum ForwardingKey: String, ConfigKey {
        case xForwardedFor = "x_forwarded_for", xForwardedProto = "x_forwarded_proto"
        case xForwardedHost = "x_forwarded_host", forwarded, requestID = "request_id"
    }

    /// Ring points per weight unit; beyond 10000 the ring costs memory without improving balance.
    static let vnodeRange = 1...10_000
    /// Maglev table sizes: a prime up to ten million (the table is 4 bytes per slot per worker-visible snapshot).
    static let maglevTableSizeRange = 1...10_000_000

    static func readRouting(_ s: ConfigSection<RoutingKey>) -> (RoutingConfig, KeySource) {
        var routing = RoutingConfig()
        routing.algorithm = s.choice(.algorithm, default: routing.algorithm)
        routing.hash = s.choice(.hash, default: routing.hash)
        let key = s.parsed(.key, default: KeySource.path) { (t: String) throws(ConfigValueError) in
            try KeySource(parsing: t)
        }
        routing.vnodes = s.int(.vnodes, default: routing.vnodes, in: vnodeRange)
        routing.ringProbes = s.int(.ringProbes, default: routing.ringProbes, in: RoutingConfig.ringProbeRange)
        if let value = s[.maglevTableSize],
            let size = s.checkedInt(.maglevTableSize, value, in: maglevTableSizeRange)
        {
            if Primes.isPrime(size) {
                routing.maglevTableSize = size
            } else {
                let next = Primes.next(after: size).map(String.init) ?? "none"
                s.problem(.maglevTableSize, "\(size) is not prime (the next prime is \(next))")
            }
        }
        switch s[.boundedLoad] {
        case nil, .null?: routing.boundedLoad = nil
        case let value?:
            if let factor = value.double {
                if factor >= 1.0 && factor.isFinite {
                    routing.boundedLoad = factor
                } else {
                    s.problem(
                        .boundedLoad, "\(value.shortDescription) is less than 1.0 (use e.g. 1.25, or null for off)")
                }
            } else {
                s.problem(.boundedLoad, "expected a number ≥ 1.0 or null, got \(value.kindDescription)")
            }
        }
        return (routing, key)
    }

    /// Reads a `health_check` object over `base`: the global section over the defaults, or a server's
    /// override over the global settings.
    static func readHealthCheck(
        _ s: ConfigSection<HealthCheckKey>, over base: LBConfig.HealthCheck
    ) -> LBConfig.HealthCheck {
        var h = base
        h.enabled = s.bool(.enabled, default: h.enabled)
        h.type = s.choice(.type, default: h.type)
        h.path = s.string(.path, default: h.path)
        if s[.path] != nil && !h.path.hasPrefix("/") {
            s.problem(.path, "\(quoted(h.path)) must start with \"/\"")
            h.path = base.path
        }
        h.intervalMs = s.duration(.interval, default: h.intervalMs)
        h.timeoutMs = s.duration(.timeout, default: h.timeoutMs)
        h.rise = s.int(.rise, default: h.rise, in: 1...100)
        h.fall = s.int(.fall, default: h.fall, in: 1...100)
        h.expectedStatus = s.parsed(.expectedStatus, default: h.expectedStatus, parseStatusRange)
        h.passiveFailures = s.int(.passiveFailures, default: h.passiveFailures, in: 0...1000)
        h.panic = s.bool(.panic, default: h.panic)
        h.reuseConnection = s.bool(.reuseConnection, default: h.reuseConnection)
        return h
    }

    /// "200-399" or a single "204"; both ends 100-599 and in order.
    static func parseStatusRange(_ text: String) throws(ConfigValueError) -> ClosedRange<Int> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let bounds = parts.map { Int($0) }
        guard (1...2).contains(parts.count), bounds.allSatisfy({ $0 != nil }),
            parts.allSatisfy({ $0.allSatisfy(\.isNumber) })
        else { throw ConfigValueError("\(quoted(text)) is not a status range; write \"A-B\", e.g. \"200-399\"") }
        let low = bounds[0]!
        let high = bounds[bounds.count - 1]!
        guard 100 <= low, low <= high, high <= 599 else {
            throw ConfigValueError("\(quoted(text)) must satisfy 100 ≤ A ≤ B ≤ 599")
        }
        return low...high
    }

    static func readTimeouts(_ s: ConfigSection<Timeout>) -> LBConfig.Timeouts {
        var t = LBConfig.Timeouts()
        for timeout in Timeout.allCases { t[timeout] = s.duration(timeout, default: t[timeout]) }
        return t
    }

    static func readLimits(_ s: ConfigSection<LimitKey>) -> LBConfig.Limits {
        var l = LBConfig.Limits()
        let positive = 1...Int.max
        l.maxRequestLine = s.int(.maxRequestLine, default: l.maxRequestLine, in: positive)
        l.maxHeaderBytes = s.int(.maxHeaderBytes, default: l.maxHeaderBytes, in: positive)
        l.maxHeaders = s.int(.maxHeaders, default: l.maxHeaders, in: positive)
        l.maxBodyBytes = s.optionalInt(.maxBodyBytes, default: l.maxBodyBytes, in: positive)
        l.maxClientConnections = s.int(.maxClientConnections, default: l.maxClientConnections, in: positive)
        l.maxConnectionsPerClient = s.optionalInt(
            .maxConnectionsPerClient, default: l.maxConnectionsPerClient, in: positive)
        l.upstreamPoolSize = s.optionalInt(.upstreamPoolSize, default: l.upstreamPoolSize, in: positive)
        l.acceptsPerTurn = s.optionalInt(.acceptsPerTurn, default: l.acceptsPerTurn, in: 1...100_000)
        l.tlsHandshakesPerTurn = s.optionalInt(.tlsHandshakesPerTurn, default: l.tlsHandshakesPerTurn, in: 1...100_000)
        l.tlsHandshakesPerSecond = s.optionalInt(
            .tlsHandshakesPerSecond, default: l.tlsHandshakesPerSecond, in: 1...10_000_000)
        l.http2MaxConcurrentStreams = s.int(
            .http2MaxConcurrentStreams, default: l.http2MaxConcurrentStreams, in: 1...10_000)
        l.serverMaxConnections = s.optionalInt(
            .serverMaxConnections, default: l.serverMaxConnections, in: 1...1_000_000)
        l.serverMaxQueue = s.int(.serverMaxQueue, default: l.serverMaxQueue, in: 0...1_000_000)
        l.learnServerLimits = s.bool(.learnServerLimits, default: l.learnServerLimits)
        return l
    }

    static func readForwarding(_ s: ConfigSection<ForwardingKey>) -> LBConfig.Forwarding {
        var f = LBConfig.Forwarding()
        f.xForwardedFor = s.bool(.xForwardedFor, default: f.xForwardedFor)
        f.xForwardedProto = s.bool(.xForwardedProto, default: f.xForwardedProto)
        f.xForwardedHost = s.bool(.xForwardedHost, default: f.xForwardedHost)
        f.forwarded = s.bool(.forwarded, default: f.forwarded)
        f.requestID = s.bool(.requestID, default: f.requestID)
        return f
    }
}

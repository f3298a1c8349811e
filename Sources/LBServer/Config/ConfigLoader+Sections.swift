import LBCore

/// Readers for the sections other than `servers`. Each starts from the defaults and overlays what is written.
extension ConfigLoader {
    static let routingKeys = [
        "algorithm", "hash", "key", "vnodes", "ring_probes", "maglev_table_size", "bounded_load",
    ]
    static let healthCheckKeys = [
        "enabled", "type", "path", "interval", "timeout", "rise", "fall", "expected_status", "passive_failures",
    ]
    static let timeoutKeys = Timeout.allCases.map(\.key)
    static let limitKeys = [
        "max_request_line", "max_header_bytes", "max_headers", "max_body_bytes", "max_client_connections",
        "upstream_pool_size",
    ]
    static let forwardingKeys = ["x_forwarded_for", "x_forwarded_proto", "x_forwarded_host", "forwarded", "request_id"]

    /// Ring points per weight unit; beyond 10000 the ring costs memory without improving balance.
    static let vnodeRange = 1...10_000
    /// Maglev table sizes: a prime up to ten million (the table is 4 bytes per slot per worker-visible snapshot).
    static let maglevTableSizeRange = 1...10_000_000

    static func readRouting(_ s: ConfigSection) -> (RoutingConfig, KeySource) {
        var routing = RoutingConfig()
        routing.algorithm = s.choice("algorithm", default: routing.algorithm)
        routing.hash = s.choice("hash", default: routing.hash)
        let key = s.parsed("key", default: KeySource.path) { (t: String) throws(ConfigValueError) in
            try KeySource(parsing: t)
        }
        routing.vnodes = s.int("vnodes", default: routing.vnodes, in: vnodeRange)
        routing.ringProbes = s.int("ring_probes", default: routing.ringProbes, in: RoutingConfig.ringProbeRange)
        if let value = s["maglev_table_size"],
            let size = s.checkedInt("maglev_table_size", value, in: maglevTableSizeRange)
        {
            if Primes.isPrime(size) {
                routing.maglevTableSize = size
            } else {
                let next = Primes.next(after: size).map(String.init) ?? "none"
                s.problem("maglev_table_size", "\(size) is not prime (the next prime is \(next))")
            }
        }
        switch s["bounded_load"] {
        case nil, .null?: routing.boundedLoad = nil
        case let value?:
            if let factor = value.double {
                if factor >= 1.0 && factor.isFinite {
                    routing.boundedLoad = factor
                } else {
                    s.problem(
                        "bounded_load", "\(value.shortDescription) is less than 1.0 (use e.g. 1.25, or null for off)")
                }
            } else {
                s.problem("bounded_load", "expected a number ≥ 1.0 or null, got \(value.kindDescription)")
            }
        }
        return (routing, key)
    }

    /// Reads a `health_check` object over `base`: the global section over the defaults, or a server's
    /// override over the global settings.
    static func readHealthCheck(_ s: ConfigSection, over base: LBConfig.HealthCheck) -> LBConfig.HealthCheck {
        var h = base
        h.enabled = s.bool("enabled", default: h.enabled)
        h.type = s.choice("type", default: h.type)
        h.path = s.string("path", default: h.path)
        if s["path"] != nil && !h.path.hasPrefix("/") {
            s.problem("path", "\(quoted(h.path)) must start with \"/\"")
            h.path = base.path
        }
        h.intervalMs = s.duration("interval", default: h.intervalMs)
        h.timeoutMs = s.duration("timeout", default: h.timeoutMs)
        h.rise = s.int("rise", default: h.rise, in: 1...100)
        h.fall = s.int("fall", default: h.fall, in: 1...100)
        h.expectedStatus = s.parsed("expected_status", default: h.expectedStatus, parseStatusRange)
        h.passiveFailures = s.int("passive_failures", default: h.passiveFailures, in: 0...1000)
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

    static func readTimeouts(_ s: ConfigSection) -> LBConfig.Timeouts {
        var t = LBConfig.Timeouts()
        for timeout in Timeout.allCases { t[timeout] = s.duration(timeout.key, default: t[timeout]) }
        return t
    }

    static func readLimits(_ s: ConfigSection) -> LBConfig.Limits {
        var l = LBConfig.Limits()
        let positive = 1...Int.max
        l.maxRequestLine = s.int("max_request_line", default: l.maxRequestLine, in: positive)
        l.maxHeaderBytes = s.int("max_header_bytes", default: l.maxHeaderBytes, in: positive)
        l.maxHeaders = s.int("max_headers", default: l.maxHeaders, in: positive)
        l.maxBodyBytes = s.optionalInt("max_body_bytes", default: l.maxBodyBytes, in: positive)
        l.maxClientConnections = s.int("max_client_connections", default: l.maxClientConnections, in: positive)
        l.upstreamPoolSize = s.int("upstream_pool_size", default: l.upstreamPoolSize, in: positive)
        return l
    }

    static func readForwarding(_ s: ConfigSection) -> LBConfig.Forwarding {
        var f = LBConfig.Forwarding()
        f.xForwardedFor = s.bool("x_forwarded_for", default: f.xForwardedFor)
        f.xForwardedProto = s.bool("x_forwarded_proto", default: f.xForwardedProto)
        f.xForwardedHost = s.bool("x_forwarded_host", default: f.xForwardedHost)
        f.forwarded = s.bool("forwarded", default: f.forwarded)
        f.requestID = s.bool("request_id", default: f.requestID)
        return f
    }
}

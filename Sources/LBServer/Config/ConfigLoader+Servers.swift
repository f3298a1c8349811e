import LBCore

extension ConfigLoader {
    /// The keys of a `servers` entry (the admin API's `POST /manage/servers` takes them less `health_check`,
    /// `tls` and the connection limit: a server added at run time uses `upstream_tls` and the `limits` defaults).
    enum ServerKey: String, ConfigKey {
        case id, host, port, weight, healthCheck = "health_check", tls
        case maxConnections = "max_connections", maxQueue = "max_queue"
    }

    /// Weights are small integers; 0 drains a server (no new keys), 1000 is far beyond any sensible ratio.
    static let weightRange = 0...1000

    /// Reads the `servers` array. Returns the servers in file order, the effective health-check settings of
    /// those with a `health_check` override, the effective TLS settings of those with a `tls` key (laid over
    /// `tls`, the `upstream_tls` settings), and the `max_connections` / `max_queue` of those that set them. Problems: wrong types, missing host/port, bad ranges, duplicate ids.
    static func readServers(
        _ value: JSONValue, in top: ConfigSection<TopLevelKey>, health: LBConfig.HealthCheck,
        tls: LBConfig.UpstreamTLS = LBConfig.UpstreamTLS()
    ) -> (
        [ServerSpec], [String: LBConfig.HealthCheck], [String: LBConfig.UpstreamTLS?],
        [String: LBConfig.ServerLimitOverride]
    ) {
        guard case .array(let elements) = value else {
            top.problem(.servers, "expected an array of server objects, got \(value.kindDescription)")
            return ([], [:], [:], [:])
        }
        var limitOverrides: [String: LBConfig.ServerLimitOverride] = [:]
        var servers: [ServerSpec] = []
        var overrides: [String: LBConfig.HealthCheck] = [:]
        var tlsOverrides: [String: LBConfig.UpstreamTLS?] = [:]
        var firstIndexOfID: [String: Int] = [:]
        for (index, element) in elements.enumerated() {
            let path = "\(top.keyPath(.servers))[\(index)]"
            guard let s = ConfigSection<ServerKey>(element, path: path, problems: top.problems) else { continue }
            guard let server = readServer(s) else { continue }
            if let first = firstIndexOfID[server.id] {
                if s[.id] != nil {
                    s.problem(.id, "\(quoted(server.id)) is used by servers[\(first)] too")
                } else {
                    top.problems.add(
                        path,
                        "id \(quoted(server.id)) (from host:port) is used by servers[\(first)] too; give each an \"id\""
                    )
                }
                continue
            }
            firstIndexOfID[server.id] = index
            servers.append(server)
            if let override = s.section(.healthCheck, of: HealthCheckKey.self), !override.isEmpty {
                if override[.panic] != nil {
                    override.problem(
                        .panic, "only in the top-level health_check: panic routing looks at every server at once")
                }
                overrides[server.id] = readHealthCheck(override, over: health)
            }
            if let value = s[.tls],
                let settings = readServerTLS(value, path: s.keyPath(.tls), problems: s.problems, base: tls)
            {
                tlsOverrides[server.id] = settings
            }
            if s[.maxConnections] != nil || s[.maxQueue] != nil {
                limitOverrides[server.id] = LBConfig.ServerLimitOverride(
                    maxConnections: s.optionalInt(.maxConnections, default: nil, in: 1...1_000_000),
                    maxQueue: s.optionalInt(.maxQueue, default: nil, in: 0...1_000_000))
            }
        }
        return (servers, overrides, tlsOverrides, limitOverrides)
    }

    /// One server object; nil when host or port is missing or invalid (the problems are recorded).
    static func readServer(_ s: ConfigSection<ServerKey>) -> ServerSpec? {
        var ok = true
        var host = ""
        switch s[.host] {
        case nil:
            s.problem(.host, "missing (required)")
            ok = false
        case .string(let text)?:
            host = text
            // Accept "[::1]" as well as "::1": both are how people write IPv6 hosts.
            if host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 {
                host = String(host.dropFirst().dropLast())
            }
            if host.isEmpty {
                s.problem(.host, "must not be empty")
                ok = false
            } else if host.filter({ $0 == ":" }).count == 1 {
                s.problem(.host, "\(quoted(text)) includes a port; put the port in \"port\"")
                ok = false
            } else if host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "[" || $0 == "]" }) {
                s.problem(.host, "\(quoted(text)) is not a host name or IP address")
                ok = false
            }
        case let other?:
            s.problem(.host, "expected a string, got \(other.kindDescription)")
            ok = false
        }
        var port = 0
        if let value = s[.port] {
            if let p = s.checkedInt(.port, value, in: 1...65535) { port = p } else { ok = false }
        } else {
            s.problem(.port, "missing (required)")
            ok = false
        }
        let weight = s.int(.weight, default: 1, in: weightRange)
        var id: String?
        switch s[.id] {
        case nil: id = nil
        case .string(let text)?:
            if text.isEmpty || text.contains(where: \.isWhitespace) {
                s.problem(.id, "\(quoted(text)) must be non-empty and contain no spaces")
                ok = false
            }
            id = text
        case let other?:
            s.problem(.id, "expected a string, got \(other.kindDescription)")
            ok = false
        }
        guard ok else { return nil }
        // The default id is written like an address (IPv6 in brackets), so it reads back unambiguously.
        return ServerSpec(
            id: id ?? HostPort(host: host, port: port).description, host: host, port: port, weight: weight)
    }
}

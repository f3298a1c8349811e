extension ConfigLoader {
    /// The keys of `upstream_tls`; a server's `tls` object takes them all but `enabled`.
    enum UpstreamTLSKey: String, ConfigKey {
        case enabled, caFile = "ca_file", verify, serverName = "server_name"
        case clientCertificate = "client_certificate", minVersion = "min_version", sessionReuse = "session_reuse"
    }

    /// Reads `upstream_tls`. Returns the settings (which servers' `tls` objects start from, even when disabled
    /// here) and whether TLS is on for every server without an override (`enabled`, default true).
    static func readUpstreamTLS(_ s: ConfigSection<UpstreamTLSKey>) -> (LBConfig.UpstreamTLS, enabled: Bool) {
        (readUpstreamTLSSettings(s, over: LBConfig.UpstreamTLS()), s.bool(.enabled, default: true))
    }

    /// A server's `tls`: `true` (the `upstream_tls` settings), `false` (plain TCP) or an object whose keys are
    /// laid over the `upstream_tls` settings. Returns nil after recording a problem.
    static func readServerTLS(
        _ value: JSONValue, path: String, problems: ProblemList, base: LBConfig.UpstreamTLS
    ) -> LBConfig.UpstreamTLS?? {
        switch value {
        case .bool(true): return .some(base)
        case .bool(false): return .some(nil)
        case .object:
            let keys = UpstreamTLSKey.allCases.filter { $0 != .enabled }
            guard let s = ConfigSection<UpstreamTLSKey>(value, path: path, problems: problems, accepting: keys) else {
                return nil
            }
            return .some(readUpstreamTLSSettings(s, over: base))
        default:
            problems.add(path, "expected true, false or an object of upstream_tls keys, got \(value.kindDescription)")
            return nil
        }
    }

    private static func readUpstreamTLSSettings(
        _ s: ConfigSection<UpstreamTLSKey>, over base: LBConfig.UpstreamTLS
    ) -> LBConfig.UpstreamTLS {
        var tls = base
        switch s[.caFile] {
        case nil: break
        case .null?: tls.caFile = nil
        case .string(let file)? where !file.isEmpty: tls.caFile = file
        case let other?:
            s.problem(.caFile, "expected a PEM file name, or null for the system's trust store, got \(other.kindDescription)")
        }
        tls.verify = s.bool(.verify, default: base.verify)
        switch s[.serverName] {
        case nil: break
        case .null?: tls.serverName = nil
        case .string(let name)? where isHostName(name): tls.serverName = name
        case let other?:
            s.problem(
                .serverName,
                "expected a DNS name or IP address without a port (the name the backend's certificate carries), "
                    + "got \(other.shortDescription)")
        }
        switch s[.clientCertificate] {
        case nil: break
        case .null?: tls.clientCertificate = nil
        case let value?:
            if let pair = readCertificatePair(value, path: s.keyPath(.clientCertificate), problems: s.problems) {
                tls.clientCertificate = pair
            }
        }
        tls.minVersion = s.choice(.minVersion, default: base.minVersion)
        tls.sessionReuse = s.bool(.sessionReuse, default: base.sessionReuse)
        return tls
    }

    /// A plausible host for SNI and certificate checks: not empty, no port, no spaces or slashes.
    private static func isHostName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 253
            && !name.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "[" || $0 == "]" })
            && (name.filter { $0 == ":" }.count != 1)
    }
}

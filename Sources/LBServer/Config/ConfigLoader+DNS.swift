/// `server_source.dns`, read and checked field by field.
extension ConfigLoader {
    enum DNSKey: String, ConfigKey {
        case name, port, resolvers, minTTL = "min_ttl", maxTTL = "max_ttl", nxdomainHold = "nxdomain_hold"
        case timeout, family
    }

    /// The DNS settings, or nil (after recording a problem) when `name` is missing or bad, or `port` is missing
    /// for an A/AAAA name.
    static func readDNS(_ s: ConfigSection<DNSKey>) -> LBConfig.DNS? {
        var valid = true
        var name = s.string(.name, default: "")
        if s[.name] == nil {
            s.problem(.name, "missing; an A/AAAA name (with port) or an SRV name like _http._tcp.example.com")
            valid = false
        } else if let problem = LBConfig.DNS.problem(withName: name) {
            s.problem(.name, problem)
            valid = false
        }
        if name.hasSuffix(".") { name.removeLast() }
        var dns = LBConfig.DNS(name: name)
        if s[.port] != nil {
            if dns.isSRV {
                s.problem(.port, "only for an A/AAAA name; the SRV records of \(quoted(name)) carry each port")
            } else {
                dns.port = s.int(.port, default: 0, in: 1...65535)
                if dns.port == 0 { valid = false }
            }
        } else if valid && !dns.isSRV {
            s.problem(.port, "missing; the A/AAAA records of \(quoted(name)) give addresses, the port comes from here")
            valid = false
        }
        switch s[.resolvers] {
        case nil: break
        case .array(let items)?:
            if items.isEmpty {
                s.problem(.resolvers, "must list at least one IP:PORT (or leave it out for /etc/resolv.conf's)")
            }
            for (i, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    s.problems.add(
                        s.keyPath(.resolvers) + "[\(i)]", "expected \"IP:PORT\", got \(item.kindDescription)")
                    continue
                }
                do { dns.resolvers.append(try LBConfig.DNS.parseResolver(text)) } catch {
                    s.problems.add(s.keyPath(.resolvers) + "[\(i)]", error.message)
                }
            }
        case let other?:
            s.problem(.resolvers, "expected a list of \"IP:PORT\" strings, got \(other.kindDescription)")
        }
        dns.minTTLMs = s.duration(.minTTL, default: dns.minTTLMs)
        dns.maxTTLMs = s.duration(.maxTTL, default: dns.maxTTLMs)
        if dns.minTTLMs > dns.maxTTLMs {
            let which: DNSKey = s[.maxTTL] != nil ? .maxTTL : .minTTL
            s.problem(
                which,
                "min_ttl (\(ConfigDuration.format(dns.minTTLMs))) must not be more than max_ttl "
                    + "(\(ConfigDuration.format(dns.maxTTLMs)))")
        }
        dns.nxdomainHoldMs = s.duration(.nxdomainHold, default: dns.nxdomainHoldMs)
        dns.timeoutMs = s.duration(.timeout, default: dns.timeoutMs)
        if dns.timeoutMs > 60_000 {
            s.problem(.timeout, "\(ConfigDuration.format(dns.timeoutMs)) is longer than a minute")
        }
        dns.family = s.choice(.family, default: dns.family)
        return valid ? dns : nil
    }
}

#if canImport(Glibc)
    import Glibc
#endif

extension LBConfig {
    /// `server_source.dns`: where the servers come from when `server_source.type` is `dns`.
    public struct DNS: Equatable, Sendable {
        /// `family`: which address records are asked for.
        public enum Family: String, CaseIterable, Sendable {
            case any, ipv4, ipv6
        }

        /// `name`: an A/AAAA name (`backends.example.com`), or an SRV name (`_http._tcp.example.com`, which
        /// starts with `_`). Asked as written, without search domains; a final `.` is allowed and dropped.
        public var name: String
        /// `port`: the servers' port for an A/AAAA name (required there); SRV records carry their own.
        public var port: Int?
        /// `resolvers`: DNS servers to ask (`IP` or `IP:PORT`, IPv6 in brackets); empty: `/etc/resolv.conf`'s.
        public var resolvers: [HostPort]
        /// `min_ttl` and `max_ttl`: the next query comes after the answer's smallest TTL clamped to these; after a
        /// failure, `min_ttl` doubling per failure in a row, up to `max_ttl`.
        public var minTTLMs: UInt64
        public var maxTTLMs: UInt64
        /// `nxdomain_hold`: how long the last good set stays after the name stops existing (NXDOMAIN).
        public var nxdomainHoldMs: UInt64
        /// `timeout`: how long the first try of a query waits for an answer (each resolver is tried twice,
        /// the second round waiting twice as long).
        public var timeoutMs: UInt64
        public var family: Family

        public static let defaultMinTTLMs: UInt64 = 1_000
        public static let defaultMaxTTLMs: UInt64 = 300_000
        public static let defaultNXDOMAINHoldMs: UInt64 = 30_000
        public static let defaultTimeoutMs: UInt64 = 2_000

        public init(
            name: String, port: Int? = nil, resolvers: [HostPort] = [], minTTLMs: UInt64 = DNS.defaultMinTTLMs,
            maxTTLMs: UInt64 = DNS.defaultMaxTTLMs, nxdomainHoldMs: UInt64 = DNS.defaultNXDOMAINHoldMs,
            timeoutMs: UInt64 = DNS.defaultTimeoutMs, family: Family = .any
        ) {
            self.name = name
            self.port = port
            self.resolvers = resolvers
            self.minTTLMs = minTTLMs
            self.maxTTLMs = maxTTLMs
            self.nxdomainHoldMs = nxdomainHoldMs
            self.timeoutMs = timeoutMs
            self.family = family
        }

        /// True for an SRV name: its first label starts with `_`.
        public var isSRV: Bool { name.hasPrefix("_") }

        /// Why `name` cannot be asked for, or nil. Labels of 1-63 letters, digits, `-` and `_`, 253 characters in
        /// all; an SRV name is `_service._proto.NAME`.
        static func problem(withName name: String) -> String? {
            if name.isEmpty { return "must not be empty" }
            let bare = name.hasSuffix(".") ? String(name.dropLast()) : name
            if bare.count > 253 { return "\(quoted(name)) is longer than 253 characters" }
            let labels = bare.split(separator: ".", omittingEmptySubsequences: false)
            for label in labels {
                if label.isEmpty { return "\(quoted(name)) has an empty label (two dots in a row?)" }
                if label.count > 63 { return "\(quoted(name)) has a label longer than 63 characters" }
                let allowed = label.unicodeScalars.allSatisfy {
                    $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_")
                }
                if !allowed { return "\(quoted(name)) may hold only letters, digits, '-', '_' and '.'" }
            }
            if bare.hasPrefix("_") {
                guard labels.count >= 3, labels[1].hasPrefix("_"), labels[1].count > 1, labels[0].count > 1 else {
                    return "\(quoted(name)) starts with '_' but is not an SRV name _service._proto.NAME "
                        + "(e.g. _http._tcp.example.com)"
                }
            }
            return nil
        }

        /// Parses a resolver, `IP` (port 53) or `IP:PORT` (IPv6 in brackets). Only addresses: a resolver's name
        /// would need a resolver.
        static func parseResolver(_ text: String) throws(ConfigValueError) -> HostPort {
            let hasPort = text.hasPrefix("[") || (text.contains(":") == false ? false : !isIPv6(text))
            let address: HostPort
            if hasPort {
                do { address = try HostPort(parsing: text, allowPortZero: false) } catch {
                    throw ConfigValueError("\(quoted(text)): \(error.message)")
                }
            } else {
                address = HostPort(host: text, port: 53)
            }
            guard isIPv4(address.host) || isIPv6(address.host) else {
                throw ConfigValueError(
                    "\(quoted(text)) is not an IP address; give IP or IP:PORT, e.g. \"127.0.0.1:5353\" or \"[::1]:53\"")
            }
            return address
        }

        static func isIPv4(_ text: String) -> Bool {
            var storage = in_addr()
            return inet_pton(AF_INET, text, &storage) == 1
        }

        static func isIPv6(_ text: String) -> Bool {
            var storage = in6_addr()
            return inet_pton(AF_INET6, text, &storage) == 1
        }
    }
}

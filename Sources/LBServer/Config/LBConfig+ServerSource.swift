extension LBConfig {
    /// `server_source`: where the set of servers comes from. `static`: the config file's `servers`, with the
    /// admin API's runtime changes optionally kept in a state file. `etcd`: keys under `/lb/<cluster>/servers/`
    /// in an etcd cluster, watched for changes (`etcd` holds its settings). `dns`: the A/AAAA or SRV records of
    /// a name, resolved again as their TTL says (`dns` holds its settings).
    public struct ServerSource: Equatable, Sendable {
        /// `server_source.type`.
        public enum SourceType: String, CaseIterable, Sendable {
            /// The config file's `servers` (or the `--backend` flags), changed at run time through the admin API.
            case `static`
            /// An etcd cluster, through its HTTP/JSON gateway.
            case etcd
            /// A DNS name: its A/AAAA records (with a configured port) or, for `_service._proto.NAME`, its SRV
            /// records.
            case dns
        }

        public var type: SourceType
        /// `server_source.state_file` (or `--state-file`): the admin API's changes to the servers are written
        /// here and laid over the config's servers at start, on `SIGHUP` and in a hot upgrade's successor.
        /// nil: runtime changes last until the next reload or restart. `static` only.
        public var stateFile: String?
        /// The etcd settings; set exactly when `type` is `etcd` in a valid config.
        public var etcd: Etcd?
        /// The DNS settings; set exactly when `type` is `dns` in a valid config.
        public var dns: DNS?

        public init(type: SourceType = .static, stateFile: String? = nil, etcd: Etcd? = nil, dns: DNS? = nil) {
            self.type = type
            self.stateFile = stateFile
            self.etcd = etcd
            self.dns = dns
        }
    }

    /// `server_source` with `type: etcd`.
    public struct Etcd: Equatable, Sendable {
        /// `endpoints`: the members' client URLs (`http://HOST:PORT`), tried in turn when one fails.
        public var endpoints: [HostPort]
        /// `cluster`: the name under which this group of lb instances keeps its keys, `/lb/<cluster>/`.
        public var cluster: String
        /// `username` and `password`: etcd's own authentication (both or neither).
        public var username: String?
        public var password: String?
        /// `dial_timeout`: how long a connection to one endpoint may take before the next one is tried.
        public var dialTimeoutMs: UInt64
        /// `lease_ttl`: seconds this instance's registration outlives its last renewal.
        public var leaseTTLSeconds: Int
        /// `instance_id`: this instance's name under `/lb/<cluster>/instances/`; nil: `<hostname>-<pid>`.
        public var instanceID: String?

        public static let defaultDialTimeoutMs: UInt64 = 2_000
        public static let defaultLeaseTTLSeconds = 10
        public static let leaseTTLRange = 2...300

        public init(
            endpoints: [HostPort], cluster: String, username: String? = nil, password: String? = nil,
            dialTimeoutMs: UInt64 = Etcd.defaultDialTimeoutMs, leaseTTLSeconds: Int = Etcd.defaultLeaseTTLSeconds,
            instanceID: String? = nil
        ) {
            self.endpoints = endpoints
            self.cluster = cluster
            self.username = username
            self.password = password
            self.dialTimeoutMs = dialTimeoutMs
            self.leaseTTLSeconds = leaseTTLSeconds
            self.instanceID = instanceID
        }

        /// Everything lb keeps in etcd for this cluster is under this prefix.
        public var prefix: String { "/lb/\(cluster)/" }
        /// One key per server: `<serversPrefix><id>` → the server as JSON.
        public var serversPrefix: String { prefix + "servers/" }
        /// One key per live lb instance: `<instancesPrefix><instance id>`, held by the instance's lease.
        public var instancesPrefix: String { prefix + "instances/" }
    }
}

extension LBConfig.ServerSource {
    /// Why `path` cannot be a state file path, or nil when it can. Only the text is checked here; whether its
    /// directory exists is checked at start (`StateFile.checkDirectory`).
    static func problem(withStateFile path: String) -> String? {
        if path.isEmpty { return "must not be empty" }
        if path.hasSuffix("/") { return "\(quoted(path)) names a directory; give a file path inside it" }
        if path.contains("\u{0}") { return "must not contain a NUL character" }
        return nil
    }
}

extension LBConfig.Etcd {
    /// Parses an endpoint URL, `http://HOST:PORT` (a trailing `/` allowed). Only plain HTTP: lb's etcd client
    /// does not speak TLS. Throws a message naming what is wrong.
    static func parseEndpoint(_ text: String) throws(ConfigValueError) -> HostPort {
        guard text.hasPrefix("http://") else {
            if text.hasPrefix("https://") {
                throw ConfigValueError("\(quoted(text)): https is not supported; use http://")
            }
            throw ConfigValueError("\(quoted(text)) is not a URL of the form http://HOST:PORT")
        }
        var rest = Substring(text.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/") else {
            throw ConfigValueError("\(quoted(text)): give no path, only http://HOST:PORT")
        }
        do {
            return try HostPort(parsing: String(rest), allowPortZero: false)
        } catch {
            throw ConfigValueError("\(quoted(text)): \(error.message)")
        }
    }

    /// Why `name` cannot be a cluster name, or nil. Names become one key segment: letters, digits, `-`, `_`, `.`.
    static func problem(withCluster name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.count > 128 { return "must be at most 128 characters" }
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
                || "-_.".unicodeScalars.contains($0)
        }
        return allowed ? nil : "\(quoted(name)) may hold only letters, digits, '-', '_' and '.'"
    }
}

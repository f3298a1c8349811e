import Foundation
import LBCore

#if canImport(Glibc)
    import Glibc

    private let posixRead = Glibc.read
    private let posixClose = Glibc.close
#elseif canImport(Darwin)
    import Darwin

    private let posixRead = Darwin.read
    private let posixClose = Darwin.close
#endif

/// Reads and validates a JSON config file (schema: the README's "Configuration" section).
///
/// Contract: returns a fully validated `LBConfig`, or throws `ConfigErrors` listing every problem found (unknown
/// keys, wrong types, out-of-range values, duplicate server ids, cross-field rules), each with its key path.
/// A missing or unreadable file and a JSON syntax error are reported alone, since nothing further can be checked.
/// Pure apart from reading the file; safe to call from any thread.
public enum ConfigLoader {
    /// The keys of the top level, in the order the unknown-key message lists them.
    enum TopLevelKey: String, ConfigKey {
        case listen, listeners, workers, admin, routing, servers, serverSource = "server_source"
        case healthCheck = "health_check", retries, timeouts
        case upstreamTLS = "upstream_tls"
        case limits
        case forwarding, accessLog = "access_log", stats, busyPolls = "busy_polls", coalesceMicros = "coalesce_us"
    }

    enum AdminKey: String, ConfigKey { case listen, token }
    enum RetriesKey: String, ConfigKey { case max, perTryTimeout = "per_try_timeout" }
    enum AccessLogKey: String, ConfigKey { case format, path }
    enum StatsKey: String, ConfigKey { case latency }
    enum ServerSourceKey: String, ConfigKey {
        case type, stateFile = "state_file", endpoints, cluster, username, password, dialTimeout = "dial_timeout"
        case leaseTTL = "lease_ttl", instanceID = "instance_id", dns
    }

    /// `busy_polls`: each empty poll is one epoll_wait system call, so beyond a few hundred it only burns CPU.
    static let busyPollRange = 0...1_000
    /// `coalesce_us`: a sleep adds up to its length to an event's latency; beyond a millisecond that is more
    /// than a loaded proxy's own p50 here.
    static let coalesceRange = 0...1_000

    /// Loads the file at `path`. `requireServers` is false when the command line supplies the servers.
    public static func load(path: String, requireServers: Bool = true) throws(ConfigErrors) -> LBConfig {
        let bytes: [UInt8]
        do {
            bytes = try readFile(path)
        } catch {
            throw ConfigErrors(source: path, problems: [ConfigProblem("", error.message)])
        }
        return try parse(bytes: bytes, source: path, requireServers: requireServers)
    }

    public static func parse(data: Data, source: String, requireServers: Bool = true) throws(ConfigErrors) -> LBConfig {
        try parse(bytes: [UInt8](data), source: source, requireServers: requireServers)
    }

    /// Parses a config document; `source` names it in messages (usually the file path).
    public static func parse(bytes: [UInt8], source: String, requireServers: Bool = true) throws(ConfigErrors)
        -> LBConfig
    {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            let problem = ConfigProblem("line \(error.line), column \(error.column)", "invalid JSON: \(error.message)")
            throw ConfigErrors(source: source, problems: [problem])
        }
        let problems = ProblemList()
        guard case .object = document else {
            problems.add("", "the top level must be a JSON object ({ ... }), got \(document.kindDescription)")
            throw problems.errors(source: source)
        }
        guard let top = ConfigSection<TopLevelKey>(document, path: "", problems: problems) else {
            throw problems.errors(source: source)
        }
        let config = read(top, requireServers: requireServers)
        for problem in config.crossFieldProblems() { problems.add(problem.location, problem.message) }
        guard problems.isEmpty else { throw problems.errors(source: source) }
        return config
    }

    static func read(_ top: ConfigSection<TopLevelKey>, requireServers: Bool) -> LBConfig {
        var config = LBConfig()
        config.listen = top.parsed(.listen, default: config.listen) { (s: String) throws(ConfigValueError) in
            try parseAddress(s, allowPortZero: true)
        }
        if let listeners = top[.listeners] {
            if top[.listen] != nil { top.problem(.listeners, "give either listen or listeners, not both") }
            config.listeners = readListeners(listeners, in: top)
        }
        config.workers = readWorkers(top)
        config.busyPolls = top.int(.busyPolls, default: config.busyPolls, in: busyPollRange)
        config.coalesceMicros = top.int(.coalesceMicros, default: config.coalesceMicros, in: coalesceRange)
        if let admin = top.section(.admin, of: AdminKey.self) {
            config.admin.listen = admin.parsed(.listen, default: config.admin.listen) {
                (s: String) throws(ConfigValueError) in try parseAddress(s, allowPortZero: true)
            }
            config.admin.token = readToken(admin)
        }
        if let routing = top.section(.routing, of: RoutingKey.self) {
            (config.routing, config.routingKey) = readRouting(routing)
        }
        if let health = top.section(.healthCheck, of: HealthCheckKey.self) {
            config.healthCheck = readHealthCheck(health, over: config.healthCheck)
        }
        var upstreamTLSBase = LBConfig.UpstreamTLS()
        if let tls = top.section(.upstreamTLS, of: UpstreamTLSKey.self) {
            let (settings, enabled) = readUpstreamTLS(tls)
            upstreamTLSBase = settings
            config.upstreamTLS = enabled ? settings : nil
        }
        if let source = top.section(.serverSource, of: ServerSourceKey.self) {
            config.serverSource = readServerSource(source)
        }
        let fromEtcd = config.serverSource.type == .etcd
        let fromDNS = config.serverSource.type == .dns
        if let servers = top[.servers] {
            if fromEtcd {
                top.problem(.servers, "with server_source.type etcd the servers come from etcd; remove this key")
            }
            if fromDNS {
                top.problem(.servers, "with server_source.type dns the servers come from DNS; remove this key")
            }
            (config.servers, config.serverHealthChecks, config.serverTLS, config.serverLimits) = readServers(
                servers, in: top, health: config.healthCheck, tls: upstreamTLSBase)
        } else if requireServers && !fromEtcd && !fromDNS {
            top.problem(
                .servers, "missing; list the backends here (an empty list is allowed) or pass --backend HOST:PORT")
        }
        if let retries = top.section(.retries, of: RetriesKey.self) {
            config.retries.max = retries.int(.max, default: config.retries.max, in: 0...10)
            config.retries.perTryTimeoutMs = retries.duration(.perTryTimeout, default: config.retries.perTryTimeoutMs)
        }
        if let timeouts = top.section(.timeouts, of: Timeout.self) {
            config.timeouts = readTimeouts(timeouts)
        }
        if let limits = top.section(.limits, of: LimitKey.self) {
            config.limits = readLimits(limits)
        }
        if let forwarding = top.section(.forwarding, of: ForwardingKey.self) {
            config.forwarding = readForwarding(forwarding)
        }
        if let log = top.section(.accessLog, of: AccessLogKey.self) {
            config.accessLog.format = log.choice(.format, default: config.accessLog.format)
            let path = log.string(.path, default: config.accessLog.path)
            if path.isEmpty { log.problem(.path, "must not be empty; use \"-\" for standard output") }
            config.accessLog.path = path.isEmpty ? "-" : path
        }
        if let stats = top.section(.stats, of: StatsKey.self) {
            config.stats.latency = stats.bool(.latency, default: config.stats.latency)
        }
        return config
    }

    /// `server_source`: `type` (`static` or `etcd`); for `static`, `state_file` (a path, or null for none); for
    /// `etcd`, `endpoints` (required, a list of `http://HOST:PORT`), `cluster` (required), `username` and
    /// `password` (both or neither) and `dial_timeout`; for `dns`, the object `dns` (`readDNS`). A key of another
    /// type is a problem naming it.
    static func readServerSource(_ s: ConfigSection<ServerSourceKey>) -> LBConfig.ServerSource {
        var source = LBConfig.ServerSource()
        source.type = s.choice(.type, default: source.type)
        switch s[.stateFile] {
        case nil, .null?: break
        case .string(let path)?:
            if let problem = LBConfig.ServerSource.problem(withStateFile: path) {
                let hint = path.isEmpty ? "; use null (or leave it out) for no state file" : ""
                s.problem(.stateFile, problem + hint)
            } else {
                source.stateFile = path
            }
        case let other?:
            s.problem(.stateFile, "expected a file path or null, got \(other.kindDescription)")
        }
        let etcdKeys: [ServerSourceKey] = [
            .endpoints, .cluster, .username, .password, .dialTimeout, .leaseTTL, .instanceID,
        ]
        if source.type != .etcd {
            for key in etcdKeys where s[key] != nil { s.problem(key, "only with \"type\": \"etcd\"") }
        }
        if source.type != .dns && s[.dns] != nil { s.problem(.dns, "only with \"type\": \"dns\"") }
        switch source.type {
        case .static:
            break
        case .etcd:
            if source.stateFile != nil {
                s.problem(.stateFile, "only with \"type\": \"static\"; etcd keeps the servers itself")
                source.stateFile = nil
            }
            source.etcd = readEtcd(s)
        case .dns:
            if source.stateFile != nil {
                s.problem(.stateFile, "only with \"type\": \"static\"; with dns the records are the servers")
                source.stateFile = nil
            }
            if s[.dns] == nil {
                s.problem(
                    .dns, "missing; give at least the name, e.g. {\"name\": \"backends.example.com\", \"port\": 8080}")
            } else if let section = s.section(.dns, of: DNSKey.self) {
                source.dns = readDNS(section)
            }
        }
        return source
    }

    /// The `etcd` keys of `server_source`; nil after recording a problem when a required one is missing.
    private static func readEtcd(_ s: ConfigSection<ServerSourceKey>) -> LBConfig.Etcd? {
        var endpoints: [HostPort] = []
        switch s[.endpoints] {
        case nil:
            s.problem(.endpoints, "missing; list the etcd members' client URLs, e.g. [\"http://127.0.0.1:2379\"]")
        case .array(let items)?:
            if items.isEmpty { s.problem(.endpoints, "must list at least one URL") }
            for (i, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    s.problems.add(
                        s.keyPath(.endpoints) + "[\(i)]", "expected a URL string, got \(item.kindDescription)")
                    continue
                }
                do { endpoints.append(try LBConfig.Etcd.parseEndpoint(text)) } catch {
                    s.problems.add(s.keyPath(.endpoints) + "[\(i)]", error.message)
                }
            }
        case let other?:
            s.problem(.endpoints, "expected a list of URLs, got \(other.kindDescription)")
        }
        let cluster = s.string(.cluster, default: "")
        if s[.cluster] == nil {
            s.problem(.cluster, "missing; name this group of lb instances (their servers are under /lb/NAME/servers/)")
        } else if let problem = LBConfig.Etcd.problem(withCluster: cluster) {
            s.problem(.cluster, problem)
        }
        let username = s[.username] == nil ? nil : s.string(.username, default: "")
        let password = s[.password] == nil ? nil : s.string(.password, default: "")
        if (username == nil) != (password == nil) {
            s.problem(username == nil ? .password : .username, "needs \(username == nil ? "username" : "password") too")
        }
        if username?.isEmpty == true { s.problem(.username, "must not be empty") }
        let dial = s.duration(.dialTimeout, default: LBConfig.Etcd.defaultDialTimeoutMs)
        if dial == 0 { s.problem(.dialTimeout, "must be more than 0") }
        var ttl = LBConfig.Etcd.defaultLeaseTTLSeconds
        if s[.leaseTTL] != nil {
            let ms = s.duration(.leaseTTL, default: UInt64(ttl) * 1000)
            if ms % 1000 != 0 || !LBConfig.Etcd.leaseTTLRange.contains(Int(ms / 1000)) {
                let range = LBConfig.Etcd.leaseTTLRange
                s.problem(.leaseTTL, "must be whole seconds from \(range.lowerBound) to \(range.upperBound)")
            } else {
                ttl = Int(ms / 1000)
            }
        }
        var instanceID: String?
        if s[.instanceID] != nil {
            let id = s.string(.instanceID, default: "")
            if let problem = LBConfig.Etcd.problem(withCluster: id) {
                s.problem(.instanceID, problem)
            } else {
                instanceID = id
            }
        }
        guard !endpoints.isEmpty, s[.cluster] != nil else { return nil }
        return LBConfig.Etcd(
            endpoints: endpoints, cluster: cluster, username: username, password: password, dialTimeoutMs: dial,
            leaseTTLSeconds: ttl, instanceID: instanceID)
    }

    /// HostPort parsing with the input quoted in front of the reason, for config-file messages.
    static func parseAddress(_ s: String, allowPortZero: Bool) throws(ConfigValueError) -> HostPort {
        do {
            return try HostPort(parsing: s, allowPortZero: allowPortZero)
        } catch {
            throw ConfigValueError("\(quoted(s)) is not HOST:PORT: \(error.message)")
        }
    }

    /// Upper bound for `workers`: far beyond any core count this runs on, low enough to catch a typo.
    static let maxWorkers = 1024

    static func parseWorkers(_ s: String) throws(ConfigValueError) -> LBConfig.WorkerCount {
        if s == "auto" { return .auto }
        guard let n = Int(s), (1...maxWorkers).contains(n) else {
            throw ConfigValueError("\(quoted(s)) is not a worker count; use an integer 1-\(maxWorkers) or \"auto\"")
        }
        return .count(n)
    }

    static func readWorkers(_ top: ConfigSection<TopLevelKey>) -> LBConfig.WorkerCount {
        switch top[.workers] {
        case nil: return .count(1)
        case .string?: return top.parsed(.workers, default: .count(1), parseWorkers)
        case .number?: return .count(top.int(.workers, default: 1, in: 1...maxWorkers))
        case let other?:
            top.problem(.workers, "expected an integer or \"auto\", got \(other.kindDescription)")
            return .count(1)
        }
    }

    static func readToken(_ admin: ConfigSection<AdminKey>) -> String? {
        switch admin[.token] {
        case nil, .null?: return nil
        case .string(let s)?:
            if s.isEmpty { admin.problem(.token, "must not be empty; use null for no token") }
            return s.isEmpty ? nil : s
        case let other?:
            admin.problem(.token, "expected a string or null, got \(other.kindDescription)")
            return nil
        }
    }

    /// Reads a whole file with POSIX calls so the message carries the OS reason ("No such file or directory").
    static func readFile(_ path: String) throws(ConfigValueError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigValueError("cannot open: \(String(cString: strerror(errno)))") }
        defer { _ = posixClose(fd) }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            throw ConfigValueError("is a directory, not a config file")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n == 0 { return bytes }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigValueError("cannot read: \(String(cString: strerror(errno)))")
            }
            bytes.append(contentsOf: chunk[0..<n])
            // A config is a few kilobytes; refuse something that is clearly not one.
            if bytes.count > 16 * 1024 * 1024 { throw ConfigValueError("larger than 16 MiB; is this the right file?") }
        }
    }
}

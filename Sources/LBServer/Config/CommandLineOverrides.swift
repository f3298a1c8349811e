import Foundation
import LBCore

/// The flags of `lb-server` that change the configuration, as raw strings. The executable's argument parser
/// fills this in; validation happens in `LBConfig.applying(_:)` so messages are the same for every caller.
public struct CommandLineOverrides: Sendable, Equatable {
    /// `--listen HOST:PORT`
    public var listen: String?
    /// `--admin HOST:PORT`
    public var admin: String?
    /// `--backend HOST:PORT[@WEIGHT]`, repeatable. When non-empty, replaces the file's whole server list.
    public var backends: [String]
    /// `--algorithm NAME`
    public var algorithm: String?
    /// `--hash NAME`
    public var hash: String?
    /// `--key SOURCE`
    public var key: String?
    /// `--workers N|auto`
    public var workers: String?
    /// `--tls-cert FILE` and `--tls-key FILE`: together they make the `--listen` address (or the file's one
    /// listener) a TLS listener with this certificate; that listener's `client_certificates` in the file stay.
    public var tlsCert: String?
    public var tlsKey: String?
    /// `--state-file FILE`: `server_source.state_file`.
    public var stateFile: String?
    /// `--etcd URL[,URL...]`: the servers come from etcd (`server_source.type: etcd` with these endpoints).
    public var etcd: String?
    /// `--cluster NAME`: `server_source.cluster`, the etcd key prefix `/lb/NAME/`.
    public var cluster: String?
    /// `--dns NAME`: the servers come from DNS (`server_source.type: dns`): the A/AAAA records of NAME, or the SRV
    /// records of `_service._proto.NAME`.
    public var dns: String?
    /// `--dns-port N`: the servers' port for an A/AAAA name (`server_source.dns.port`).
    public var dnsPort: String?

    /// True when the flags give the servers (or where to find them), so a config file need not list any.
    public var suppliesServers: Bool { !backends.isEmpty || etcd != nil || dns != nil }

    public init(
        listen: String? = nil, admin: String? = nil, backends: [String] = [], algorithm: String? = nil,
        hash: String? = nil, key: String? = nil, workers: String? = nil, tlsCert: String? = nil,
        tlsKey: String? = nil, stateFile: String? = nil, etcd: String? = nil, cluster: String? = nil,
        dns: String? = nil, dnsPort: String? = nil
    ) {
        self.listen = listen
        self.admin = admin
        self.backends = backends
        self.algorithm = algorithm
        self.hash = hash
        self.key = key
        self.workers = workers
        self.tlsCert = tlsCert
        self.tlsKey = tlsKey
        self.stateFile = stateFile
        self.etcd = etcd
        self.cluster = cluster
        self.dns = dns
        self.dnsPort = dnsPort
    }
}

extension LBConfig {
    /// Source name used in `ConfigErrors` for problems found in flags.
    public static let commandLineSource = "command line"

    /// Returns this config with the flags laid over it: each given flag replaces its key; `--backend` flags
    /// replace the server list (ids are `host:port`, per-server health-check overrides are dropped).
    /// Throws every bad flag at once, each named with its value, e.g. `--backend "x:y": port "y" is not a number`.
    public func applying(_ o: CommandLineOverrides) throws(ConfigErrors) -> LBConfig {
        let problems = ProblemList()
        var config = self
        func flag(_ name: String, _ value: String) -> String { "--\(name) \(quoted(value))" }

        if let text = o.listen {
            do {
                config.listen = try HostPort(parsing: text)
                config.listeners = []  // the flag names the one listener
            } catch {
                problems.add(flag("listen", text), error.message)
            }
        }
        switch (o.tlsCert, o.tlsKey) {
        case let (cert?, key?):
            let listeners = config.effectiveListeners
            if listeners.count > 1 {
                problems.add(flag("tls-cert", cert), "the file has \(listeners.count) listeners; give --listen too")
            } else {
                // The flags swap the server's certificate; who may connect stays as the file says, so a listener
                // that requires client certificates is never opened to every client by a certificate flag.
                let tls = LBConfig.TLS(
                    certificates: [.init(cert: cert, key: key)],
                    clientCertificates: listeners[0].tls?.clientCertificates)
                config.listeners = [LBConfig.Listener(address: listeners[0].address, tls: tls)]
            }
        case (let cert?, nil):
            problems.add(flag("tls-cert", cert), "needs --tls-key with the certificate's private key")
        case (nil, let key?):
            problems.add(flag("tls-key", key), "needs --tls-cert with the certificate chain")
        case (nil, nil):
            break
        }
        if let text = o.admin {
            do { config.admin.listen = try HostPort(parsing: text) } catch {
                problems.add(flag("admin", text), error.message)
            }
        }
        if let text = o.algorithm {
            if let name = AlgorithmName(rawValue: text) {
                config.routing.algorithm = name
            } else {
                problems.add(flag("algorithm", text), notOneOf(AlgorithmName.self))
            }
        }
        if let text = o.hash {
            if let name = KeyHashName(rawValue: text) {
                config.routing.hash = name
            } else {
                problems.add(flag("hash", text), notOneOf(KeyHashName.self))
            }
        }
        if let text = o.key {
            do { config.routingKey = try KeySource(parsing: text) } catch {
                problems.add(flag("key", text), error.message)
            }
        }
        if let text = o.workers {
            do { config.workers = try ConfigLoader.parseWorkers(text) } catch {
                problems.add(flag("workers", text), error.message)
            }
        }
        if let path = o.stateFile {
            if let problem = ServerSource.problem(withStateFile: path) {
                problems.add(flag("state-file", path), problem)
            } else {
                config.serverSource.stateFile = path
            }
        }
        applyEtcd(o, to: &config, problems: problems)
        applyDNS(o, to: &config, problems: problems)
        if !o.backends.isEmpty {
            var servers: [ServerSpec] = []
            var seen: Set<String> = []
            for text in o.backends {
                do {
                    let server = try Self.parseBackend(text)
                    if seen.insert(server.id).inserted {
                        servers.append(server)
                    } else {
                        problems.add(flag("backend", text), "\(server.id) is given twice")
                    }
                } catch {
                    problems.add(flag("backend", text), error.message)
                }
            }
            config.servers = servers
            config.serverHealthChecks = [:]
        }
        if problems.isEmpty {
            for problem in config.crossFieldProblems() { problems.add(problem.location, problem.message) }
        }
        guard problems.isEmpty else { throw problems.errors(source: Self.commandLineSource) }
        return config
    }

    /// `--etcd` and `--cluster`: `--etcd` makes etcd the source (the file's `servers` and `--backend` flags do not
    /// apply) and keeps the file's `username`, `password` and `dial_timeout` when it has an etcd source too;
    /// `--cluster` names the cluster, and alone it only renames the file's etcd cluster.
    private func applyEtcd(_ o: CommandLineOverrides, to config: inout LBConfig, problems: ProblemList) {
        func flag(_ name: String, _ value: String) -> String { "--\(name) \(quoted(value))" }
        if let cluster = o.cluster, let problem = LBConfig.Etcd.problem(withCluster: cluster) {
            problems.add(flag("cluster", cluster), problem)
            return
        }
        guard let text = o.etcd else {
            if let cluster = o.cluster {
                if config.serverSource.etcd != nil {
                    config.serverSource.etcd?.cluster = cluster
                } else {
                    problems.add(flag("cluster", cluster), "needs --etcd URL (or server_source.type etcd in the file)")
                }
            }
            return
        }
        var endpoints: [HostPort] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            do { endpoints.append(try LBConfig.Etcd.parseEndpoint(String(part))) } catch {
                problems.add(flag("etcd", text), error.message)
            }
        }
        if !o.backends.isEmpty {
            problems.add(flag("etcd", text), "cannot be combined with --backend: the servers come from etcd")
        }
        if let path = o.stateFile {
            problems.add(flag("state-file", path), "cannot be combined with --etcd: etcd keeps the servers itself")
        }
        guard let cluster = o.cluster ?? config.serverSource.etcd?.cluster else {
            problems.add(flag("etcd", text), "needs --cluster NAME: the servers are read from /lb/NAME/servers/")
            return
        }
        var etcd = config.serverSource.etcd ?? LBConfig.Etcd(endpoints: endpoints, cluster: cluster)
        etcd.endpoints = endpoints
        etcd.cluster = cluster
        config.serverSource = ServerSource(type: .etcd, etcd: etcd)
        config.servers = []
        config.serverHealthChecks = [:]
    }

    /// `--dns` and `--dns-port`: `--dns` makes DNS the source (the file's `servers` and `--backend` flags do not
    /// apply) and keeps the file's other `dns` settings (resolvers, TTL bounds) when it has a dns source too;
    /// `--dns-port` sets the port, and alone it only changes the file's dns port.
    private func applyDNS(_ o: CommandLineOverrides, to config: inout LBConfig, problems: ProblemList) {
        func flag(_ name: String, _ value: String) -> String { "--\(name) \(quoted(value))" }
        var port: Int?
        if let text = o.dnsPort {
            guard let n = Int(text), text.allSatisfy(\.isNumber), (1...65535).contains(n) else {
                problems.add(flag("dns-port", text), "is not a port number 1-65535")
                return
            }
            port = n
        }
        guard var name = o.dns else {
            if let port, let text = o.dnsPort {
                if config.serverSource.dns?.isSRV == false {
                    config.serverSource.dns?.port = port
                } else if config.serverSource.dns != nil {
                    problems.add(flag("dns-port", text), "the file's SRV name gives each port; this flag is for A/AAAA")
                } else {
                    problems.add(flag("dns-port", text), "needs --dns NAME (or server_source.type dns in the file)")
                }
            }
            return
        }
        if let problem = LBConfig.DNS.problem(withName: name) {
            problems.add(flag("dns", name), problem)
            return
        }
        if name.hasSuffix(".") { name.removeLast() }
        if !o.backends.isEmpty {
            problems.add(flag("dns", name), "cannot be combined with --backend: the servers come from DNS")
        }
        if o.etcd != nil {
            problems.add(flag("dns", name), "cannot be combined with --etcd: choose one source of servers")
        }
        if let path = o.stateFile {
            problems.add(flag("state-file", path), "cannot be combined with --dns: the records are the servers")
        }
        var dns = config.serverSource.dns ?? LBConfig.DNS(name: name)
        dns.name = name
        if dns.isSRV {
            if let text = o.dnsPort {
                problems.add(flag("dns-port", text), "an SRV name's records give each port; leave this out")
            }
            dns.port = nil
        } else {
            dns.port = port ?? dns.port
            if dns.port == nil {
                problems.add(flag("dns", name), "needs --dns-port N: the A/AAAA records give only addresses")
            }
        }
        config.serverSource = ServerSource(type: .dns, dns: dns)
        config.servers = []
        config.serverHealthChecks = [:]
    }

    /// Parses `HOST:PORT[@WEIGHT]`; the id is the address as written back (`host:port`, IPv6 in brackets).
    static func parseBackend(_ text: String) throws(ConfigValueError) -> ServerSpec {
        var address = Substring(text)
        var weight = 1
        if let at = text.lastIndex(of: "@") {
            address = text[..<at]
            let weightText = text[text.index(after: at)...]
            guard let w = Int(weightText), weightText.allSatisfy(\.isNumber) else {
                throw ConfigValueError("weight \(quoted(String(weightText))) is not a number")
            }
            guard ConfigLoader.weightRange.contains(w) else {
                throw ConfigValueError("weight \(w) is \(describeRange(ConfigLoader.weightRange))")
            }
            weight = w
        }
        let hostPort = try HostPort(parsing: String(address), allowPortZero: false)
        return ServerSpec(id: hostPort.description, host: hostPort.host, port: hostPort.port, weight: weight)
    }

    /// The whole startup path: the file (if any), then the flags, then `LB_ADMIN_TOKEN`.
    ///
    /// Errors: no path, no backends, no etcd and no dns → "give --config FILE, at least one --backend HOST:PORT,
    /// --etcd URL or --dns NAME"; a path that cannot be read → names it and the OS reason; otherwise every
    /// problem in the file,
    /// or in the flags. A file without `servers` is fine when `--backend` or `--etcd` flags are given.
    public static func resolve(
        configPath: String?, overrides: CommandLineOverrides,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigErrors) -> LBConfig {
        let base: LBConfig
        if let path = configPath {
            base = try ConfigLoader.load(path: path, requireServers: !overrides.suppliesServers)
        } else if !overrides.suppliesServers {
            throw ConfigErrors(
                source: commandLineSource,
                problems: [ConfigProblem(
                    "", "give --config FILE, at least one --backend HOST:PORT, --etcd URL or --dns NAME")])
        } else {
            base = LBConfig()
        }
        return try base.applying(overrides).withAdminToken(fromEnvironment: environment)
    }
}

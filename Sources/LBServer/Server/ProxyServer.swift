import CLibUV
import Foundation
import LBCore
import LBTLS
import LBUV
import Glibc
import Logging

/// The running balancer: workers, the shared routing state, the admin API, signals and graceful shutdown.
///
/// Threads: `run()` runs the control loop on the calling thread; that loop is also worker 0's loop. Writers of
/// the routing state (admin API, config reload, health checks) run on this loop and publish whole
/// `RoutingState` snapshots; workers only read them.
public final class ProxyServer {
    public internal(set) var config: LBConfig
    /// The servers the config gives (its file or `--backend` flags), before any runtime change: what the
    /// state file's changes and each server's `origin` in `/api/servers` are relative to. Control loop only.
    var configServers: [ServerSpec]
    /// The state file (`server_source.state_file`); nil without one.
    let stateFile: StateFileStore?
    let configPath: String?
    let overrides: CommandLineOverrides
    let logger: Logger
    let loop: EventLoop
    let routing: SnapshotPublisher<RoutingState>
    /// Worker 0: runs on the control loop (the only worker when `workers` is 1). Set by `start()`.
    /// Workers 1...N-1, each on a thread and loop of its own.
    private(set) var threads: [WorkerThread] = []
    /// How many workers (loops) carry traffic.
    let workerCount: Int
    private(set) var admin: AdminServer?
    private(set) var health: HealthChecker?
    /// The etcd source (`server_source.type: etcd`); nil for a static one. Set by `start()`.
    var etcdSource: EtcdSource?
    /// This instance's lease-held entry under `/lb/<cluster>/instances/` (etcd source only).
    var etcdRegistration: EtcdRegistration?
    /// Server sets read from etcd that could not be built into a routing state.
    var etcdApplyFailures = 0
    /// The DNS source (`server_source.type: dns`); nil for another. Set by `start()`.
    var dnsSource: DNSSource?
    /// Server sets resolved from DNS that could not be built into a routing state.
    var dnsApplyFailures = 0
    var signals: [SignalWatcher] = []
    /// How worker threads hand results back to the control loop.
    let controlInbox = LoopInbox()
    /// Where routing tables for changed server sets are built, at a lower priority (`offLoop`).
    let controlWork = ControlWork()
    /// Server-set changes waiting for the one under way (`serializeChange`).
    var pendingChanges: [(_ done: @escaping () -> Void) -> Void] = []
    var changeRunning = false
    var shutdownTimer: LoopTimer?
    var shutdownPoll: LoopTimer?
    var isShuttingDown = false
    /// Set when the drain was a hot upgrade's hand-off: the first SIGTERM then only says so.
    var handedOff = false
    /// The control socket (`--control-socket`): status and hot upgrades. Nil without the flag.
    let controlSocketPath: String?
    var control: ControlServer?
    /// This process's side of a hot upgrade it started (the running process's side).
    var upgrade: UpgradeCoordinator?
    /// Set while this process is a successor that has not taken over yet (the new process's side).
    var takeover: Takeover?
    /// Per config listener: its addresses, TLS or not, and every worker's socket, for a later hand-off.
    var listenerGroups: [HandOff.ListenerGroup] = []
    /// The process this one replaced in a hot upgrade, shown in stats.
    public private(set) var upgradedFrom: Int32?
    /// The counters of the process this one replaced, added to every collection (`collectStats`); set from the
    /// answer to `ready`, then replaced by `final_counters` once that process has drained (`carriedFinal`).
    /// Control loop only.
    var carried = CarriedCounters()
    var carriedFinal = false
    /// The successor that asked for counters in `ready`: after the drain, the final ones go to it.
    var finalCountersTo: Int32?
    /// What `run()` returns: 1 when this successor gave up its takeover.
    var exitStatus: Int32 = 0
    let startedAt = Date()
    /// Bound addresses, known after `start()`.
    public private(set) var proxyAddress: SocketAddress?
    /// The TLS listeners, in config order: their contexts serve the certificates in stats and metrics, and a
    /// certificate reload publishes new ones.
    private(set) var tlsListeners: [BoundListener] = []
    var tlsContexts: [TLSServerContext] { tlsListeners.compactMap { $0.tls?.load().tls } }
    /// Per config listener (the order of `listenerGroups`): its TLS context, nil for a plain one. A hand-off
    /// reads the ticket keys from here.
    private(set) var listenerContexts: [SnapshotPublisher<TLSListenerContext>?] = []
    public private(set) var adminAddress: SocketAddress?

    /// `controlSocket`: serve the control socket there. `successor`: this process replaces the one that
    /// answers on that socket (hot upgrade) and takes over its sockets in `start()`; it starts with that
    /// process's health, and, without a state file, its server set and drain flags (the config's `servers`
    /// give way to them). With a state file (`server_source.state_file`) the servers are the config's with
    /// the file's changes laid over them, for a successor as for any start; a file that cannot be read or
    /// applied is logged, shown in `/api/servers`, and the config's servers are used alone.
    public init(
        config: LBConfig, configPath: String?, overrides: CommandLineOverrides, logger: Logger,
        controlSocket: String? = nil, successor: Successor? = nil
    ) throws {
        var config = config
        configServers = config.servers
        let store = config.serverSource.stateFile.map { StateFileStore(path: $0, logger: logger) }
        try store?.checkDirectory()
        stateFile = store
        var drained: Set<String> = []
        let fromFile = store?.read()
        if let fromFile {
            (config.servers, drained) = fromFile.applied(to: configServers)
        } else if store == nil, let handOff = successor?.handOff {
            config.servers = handOff.servers.map(\.spec)
            drained = Set(handOff.servers.filter(\.draining).map(\.spec.id))
        }
        self.configPath = configPath
        self.overrides = overrides
        self.logger = logger
        controlSocketPath = controlSocket
        let workers = config.workers.resolved(cores: ProcessInfo.processInfo.activeProcessorCount)
        workerCount = workers
        let state: RoutingState
        do {
            state = try ProxyServer.buildState(config: config, previous: nil, workers: workers, generation: 1)
        } catch where fromFile.map({ !$0.isEmpty }) ?? false {
            // Never half-applied: the file's changes go whole or not at all. The file is blamed only once the
            // config alone builds; otherwise the config's own error is the one to report.
            config.servers = configServers
            drained = []
            state = try ProxyServer.buildState(config: config, previous: nil, workers: workers, generation: 1)
            store?.reject("its changes cannot be applied to the config's servers: \(error)")
        }
        // Made after the last step that can throw: an EventLoop is freed only by `close()`, which a failed init
        // would never reach.
        loop = try EventLoop()
        self.config = config
        routing = SnapshotPublisher(state)
        for b in state.backends where drained.contains(b.spec.id) { b.setDraining(true) }
        if let successor, let handOff = successor.handOff {
            takeover = Takeover(successor: successor)
            upgradedFrom = handOff.pid
            for carried in handOff.servers where !carried.up {
                state.backend(id: carried.spec.id)?.startDown(now: loop.now)
            }
        }
        if let store, let fromFile, store.outcome == .applied {
            logger.info("state file applied", metadata: ["file": "\(store.path)", "changes": "\(fromFile.count)"])
            // Changes the config has come to agree with leave the file (see `RuntimeChanges`).
            store.writeLogged(RuntimeChanges(from: configServers, to: config.servers, draining: drained))
        }
    }

    /// Builds a routing state for `config`, reusing the `Backend` objects of `previous` whose id and address
    /// are unchanged (their pools, counters and health survive a reload or an admin change).
    static func buildState(config: LBConfig, previous: RoutingState?, workers: Int, generation: UInt64) throws -> RoutingState {
        let snapshot = try RoutingSnapshot(servers: config.servers, config: config.routing, generation: generation)
        var reusable: [String: Backend] = [:]
        var contexts = TLSClientContexts(previous: previous)
        for b in previous?.backends ?? [] { reusable[b.spec.id] = b }
        var backends: [Backend] = []
        for spec in snapshot.servers {
            let tls = try contexts.backendTLS(config.upstreamTLS(forServer: spec.id), server: spec)
            let limit = config.connectionLimit(forServer: spec.id).map { WorkerConnectionLimit($0, workers: workers) }
            if let old = reusable[spec.id], old.spec.host == spec.host, old.spec.port == spec.port, !old.isRemoved,
                old.tls == tls
            {
                if old.spec.weight == spec.weight && old.limit == limit {
                    backends.append(old)
                } else {
                    backends.append(Backend(spec: spec, address: old.address, sharing: old, limit: limit))
                }
            } else {
                let address = try SocketAddress.resolve(host: spec.host, port: spec.port)
                backends.append(Backend(spec: spec, address: address, tls: tls, limit: limit, workers: workers))
            }
        }
        return RoutingState(snapshot: snapshot, backends: backends, panicRouting: config.healthCheck.panic)
    }

    /// Binds the listeners (or, for a successor, takes over the inherited ones without accepting yet), starts
    /// the admin API, the control socket, health checks and signal handlers. Prints one `listening on` line per
    /// socket. A successor accepts only once its first health checks pass (`Takeover`).
    ///
    /// On failure (a bind refused, a bad certificate, a worker that could not start, a control socket in use)
    /// everything opened so far is closed, the worker threads have ended and the loop is freed before the error
    /// is rethrown: the caller only reports it and exits.
    public func start() throws {
        do {
            try startServing()
        } catch {
            closeAfterFailedStart()
            throw error
        }
    }

    /// A failed `start()`: close every handle it opened, as a shutdown's last step does, wait for the worker
    /// threads that did start to close theirs, and free the loop once the close callbacks have run. Without this,
    /// every handle already open (the inbox's async handle, listeners, timers, the admin API) held its memory and
    /// its Swift owner to the end of the process, and LeakSanitizer reported them at exit.
    private func closeAfterFailedStart() {
        finishShutdown()
        for t in threads { t.join() }
        let open = loop.close()
        if open != 0 {
            logger.error("handles still open after a failed start", metadata: ["count": "\(open)"])
        }
    }

    private func startServing() throws {
        lb_ignore_sigpipe()
        ProxyServer.raiseOpenFileLimit(logger: logger, needed: config.limits.maxClientConnections)
        controlInbox.attach(to: loop)
        let settings = ProxySettings(config: config)
        let logSpec: (format: AccessLog.Format, path: String)?
        switch config.accessLog.format {
        case .off: logSpec = nil
        case .common: logSpec = (.common, config.accessLog.path)
        case .json: logSpec = (.json, config.accessLog.path)
        }
        let accepting = takeover == nil
        var inherited = takeover?.successor.handOff?.listeners ?? []
        // Every worker runs on a thread of its own; this loop is the control loop alone (admin API, health
        // checks, reloads, routing rebuilds), so no control work ever delays a client.
        //
        // With several workers every loop binds the same addresses with SO_REUSEPORT and the kernel spreads
        // connections; worker 0 binds first, which fixes the port when the config asks for port 0. A successor
        // adopts the sockets of the same address instead, every one of them, spread over its workers.
        let workers = max(1, workerCount)
        var plans = [[ListenerPlan]](repeating: [], count: workers)
        var tlsOf: [SnapshotPublisher<TLSListenerContext>?] = []
        var inheritedShares: [Int: [[Int32]]] = [:]
        let listeners = config.effectiveListeners
        for (group, listener) in listeners.enumerated() {
            let address = try SocketAddress.resolve(host: listener.address.host, port: listener.address.port)
            let match = HandOff.match(inherited, configured: listener.address, resolved: address)
            let tls = try listener.tls.map { (t) throws(SetupError) in
                do {
                    return SnapshotPublisher(try ProxyServer.makeTLSContext(
                        t, http2: listener.http2, ticketKeys: try Self.carriedTicketKeys(t, match.map { inherited[$0] })))
                } catch {
                    throw SetupError("TLS listener \(listener.address): \(error)")
                }
            }
            tlsOf.append(tls)
            listenerContexts.append(tls)
            if let i = match {
                let perWorker = HandOff.distribute(inherited.remove(at: i).descriptors, workers: workerCount)
                guard !perWorker[0].isEmpty else { throw SetupError("no inherited socket for \(listener.address)") }
                inheritedShares[group] = perWorker
                plans[0] += perWorker[0].map { ListenerPlan(group: group, source: .adopt($0), tls: tls, http2: listener.http2) }
                logger.info("took over listening sockets", metadata: [
                    "address": "\(address)", "sockets": "\(perWorker.reduce(0) { $0 + $1.count })",
                ])
            } else {
                plans[0].append(ListenerPlan(
                    group: group, source: .bind(address), tls: tls, http2: listener.http2, reusePort: workerCount > 1))
            }
        }
        var groups: [HandOff.ListenerGroup] = []
        var bound: [BoundListener] = []
        for id in 0..<workers {
            if id == 1 {
                // The other workers bind where worker 0 did (its port, when the config said 0).
                for (group, listener) in listeners.enumerated() {
                    if let shares = inheritedShares[group] {
                        for w in 1..<workers {
                            plans[w] += shares[w].map {
                                ListenerPlan(group: group, source: .adopt($0), tls: tlsOf[group], http2: listener.http2)
                            }
                        }
                    } else {
                        for w in 1..<workers {
                            plans[w].append(ListenerPlan(
                                group: group, source: .bind(bound[group].address), tls: tlsOf[group],
                                http2: listener.http2))
                        }
                    }
                }
            }
            let t = WorkerThread(
                id: id, settings: settings, routing: routing, plans: plans[id], accepting: accepting, accessLog: logSpec)
            threads.append(t)
            try t.start()
            if id == 0 {
                for (group, listener) in listeners.enumerated() {
                    let at = t.boundAddresses.first { $0.group == group }?.address
                    guard let at else { throw SetupError("worker 0 has no socket for \(listener.address)") }
                    bound.append(BoundListener(address: at, tls: tlsOf[group], http2: listener.http2))
                    groups.append(HandOff.ListenerGroup(
                        configured: listener.address.description, bound: at.description, tls: tlsOf[group] != nil,
                        descriptors: []))
                }
            }
            for d in t.descriptors { groups[d.group].descriptors.append(d.fd) }
        }
        // The carried ticket keys are in the contexts now. The local copies go first, so the hand-off's arrays
        // are the only owners of their bytes and are overwritten in place (a shared array would be copied).
        for i in inherited.indices { inherited[i].ticketKeys = [] }
        takeover?.successor.handOff?.wipeTicketKeys()
        for g in inherited {
            // The new config has no such listener: its sockets close here, and the previous process stops
            // accepting on them when it drains.
            logger.warning("inherited listener not in the configuration: closed", metadata: ["address": "\(g.bound)"])
            for fd in g.descriptors { Glibc.close(fd) }
        }
        proxyAddress = bound.first?.address
        tlsListeners = bound.filter { $0.tls != nil }
        listenerGroups = groups
        for l in bound { announce("lb-server listening on \(l.address) (\(l.tls == nil ? "proxy" : "proxy, tls"))") }
        let adminServer = try makeAdminServer(accepting: accepting)
        admin = adminServer
        adminAddress = adminServer.boundAddress
        announce("lb-server listening on \(adminServer.boundAddress) (admin)")
        logger.info(takeover == nil ? "started" : "started as a successor; accepting once health checks pass", metadata: [
            "servers": "\(routing.load().backends.count)", "algorithm": "\(config.routing.algorithm.rawValue)",
            "hash": "\(config.routing.hash.rawValue)", "key": "\(config.routingKey)", "workers": "\(workerCount)",
        ])
        // Last, so that nothing after it can fail and leave the socket file behind.
        if let path = controlSocketPath {
            let server = try ControlServer(loop: loop, path: path, temporary: takeover != nil, logger: logger)
            server.handler = { [unowned self] request, session in self.handleControl(request, session) }
            control = server
        }
        for sig in [SIGINT, SIGTERM] {
            signals.append(SignalWatcher(loop: loop, signal: sig) { [unowned self] signum in
                self.beginShutdown(signal: signum)
            })
        }
        signals.append(SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in self.reload() })
        health = HealthChecker(loop: loop, logger: logger)
        if takeover != nil { health?.firstCheckWithinMs = 100 }
        health?.sync(with: routing.load(), config: config)
        health?.firstCheckWithinMs = nil
        try startEtcdSource()
        try startDNSSource()
        if let takeover {
            takeover.begin(server: self)
        } else {
            SystemdNotify.ready(status: "serving")
        }
    }

    /// The admin API: on the inherited admin socket when a successor's config names the same address, else
    /// bound afresh.
    private func makeAdminServer(accepting: Bool) throws -> AdminServer {
        let address = try SocketAddress.resolve(host: config.admin.listen.host, port: config.admin.listen.port)
        if var handOff = takeover?.successor.handOff, let inherited = handOff.admin {
            handOff.admin = nil
            takeover?.successor.handOff = handOff
            if HandOff.match([inherited], configured: config.admin.listen, resolved: address) != nil,
                let fd = inherited.descriptors.first
            {
                for extra in inherited.descriptors.dropFirst() { Glibc.close(extra) }
                return try AdminServer(server: self, adopting: fd)
            }
            logger.warning("inherited admin listener not in the configuration: closed", metadata: ["address": "\(inherited.bound)"])
            for fd in inherited.descriptors { Glibc.close(fd) }
        }
        return try AdminServer(server: self, address: address, accepting: accepting)
    }

    /// Hot upgrade, successor: starts accepting on every socket of every worker, then calls `done` on the
    /// control loop (with the first error, if a `listen` failed). The admin API starts later
    /// (`startAdminAccepting`), once the previous process's counters are in.
    func startAccepting(done: @escaping (SetupError?) -> Void) {
        // One count per worker thread and one for the control loop, given last.
        let box = CountDown(count: threads.count + 1) { errors in done(errors.first) }
        for t in threads {
            t.startAccepting { [inbox = controlInbox] error in
                let e = UncheckedSendable(error)
                inbox.post { box.finish(e.value) }
            }
        }
        box.finish(nil)
    }

    /// Hot upgrade, successor, once serving: the admin API accepts (a no-op once shut down). A failure is
    /// logged: traffic is served by then, so it is no reason to give up.
    func startAdminAccepting() {
        guard !isShuttingDown else { return }
        do {
            try admin?.startAccepting()
        } catch {
            logger.error("the admin API cannot accept", metadata: ["error": "\(error)"])
        }
    }

    private func announce(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// Runs until shutdown completes. Returns the process exit status.
    public func run() -> Int32 {
        loop.run()
        for t in threads { t.join() }
        sendFinalCounters()
        let open = loop.close()
        if open != 0 {
            logger.error("handles still open at exit", metadata: ["count": "\(open)"])
        }
        logger.info("stopped")
        return exitStatus
    }

    // MARK: changes

    /// The routing state `newConfig` would get, built against the published one (reusing its `Backend`s);
    /// nothing is published, so the admin API uses it for dry runs and to measure a change before making it.
    /// Throws `RoutingError` (weights, table limits) or `SetupError` (a new server's host does not resolve).
    /// Control loop only; resolving a new host blocks it (getaddrinfo).
    func prepare(_ newConfig: LBConfig) throws -> RoutingState {
        try ProxyServer.buildState(
            config: newConfig, previous: routing.load(), workers: workerCount, generation: routing.load().generation + 1)
    }

    /// Makes `state` (from `prepare(newConfig)` in this same loop turn) the one workers route with: servers
    /// missing from it are marked removed (their in-flight requests finish, idle pooled connections close),
    /// and `config`'s servers and routing become `newConfig`'s. Lock-free for workers. Control loop only.
    /// `moved`: the share of keys the change moves, for the log; nil when it was not measured.
    func publish(_ state: RoutingState, config newConfig: LBConfig, reason: String, movedFraction moved: Double?) {
        let previous = routing.load()
        // A reweighted server is a new `Backend` sharing the old one's flags: only servers whose id left, or
        // whose address changed (a fresh `Backend`), are removed.
        for b in previous.backends where !state.keepsBackend(of: b) {
            b.markRemoved()
        }
        routing.publish(state)
        // A removed server's carried counters go with it, as its own do (a new `Backend` starts at zero).
        for b in previous.backends where !state.keepsBackend(of: b) { carried.dropServer(b.spec.id) }
        health?.sync(with: state, config: newConfig)
        for t in threads { t.post { $0.closeIdleUpstreamsOfRemovedBackends(previous) } }
        let restartOnly = ProxyServer.restartOnlyChanges(from: config, to: newConfig)
        if !restartOnly.isEmpty {
            logger.warning("config changes that apply only on restart were not applied", metadata: [
                "keys": "\(restartOnly.joined(separator: ", "))",
            ])
        }
        config.servers = newConfig.servers
        config.routing = newConfig.routing
        config.healthCheck = newConfig.healthCheck  // the checker now runs with these (sync above)
        config.serverHealthChecks = newConfig.serverHealthChecks
        var metadata: Logger.Metadata = [
            "reason": "\(reason)", "generation": "\(state.generation)", "servers": "\(state.backends.count)",
        ]
        if let moved { metadata["moved_fraction"] = "\(moved)" }
        logger.info("config applied", metadata: metadata)
    }
}

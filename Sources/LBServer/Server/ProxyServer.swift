import CLibUV
import Foundation
import LBCore
import LBTLS
import LBUV
import Logging

/// The running balancer: workers, the shared routing state, the admin API, signals and graceful shutdown.
///
/// Threads: `run()` runs the control loop on the calling thread; that loop is also worker 0's loop. Writers of
/// the routing state (admin API, config reload, health checks) run on this loop and publish whole
/// `RoutingState` snapshots; workers only read them.
public final class ProxyServer {
    public internal(set) var config: LBConfig
    let configPath: String?
    let overrides: CommandLineOverrides
    let logger: Logger
    let loop: EventLoop
    let routing: SnapshotPublisher<RoutingState>
    /// Worker 0: runs on the control loop (the only worker when `workers` is 1). Set by `start()`.
    private(set) var controlWorker: Worker?
    /// Workers 1...N-1, each on a thread and loop of its own.
    private(set) var threads: [WorkerThread] = []
    /// How many workers (loops) carry traffic.
    let workerCount: Int
    private var admin: AdminServer?
    private var health: HealthChecker?
    private var signals: [SignalWatcher] = []
    /// How worker threads hand results back to the control loop.
    let controlInbox = LoopInbox()
    private var shutdownTimer: LoopTimer?
    private var shutdownPoll: LoopTimer?
    private var isShuttingDown = false
    let startedAt = Date()
    /// Bound addresses, known after `start()`.
    public private(set) var proxyAddress: SocketAddress?
    /// The TLS listeners, in config order: their contexts serve the certificates in stats and metrics, and a
    /// certificate reload publishes new ones.
    private(set) var tlsListeners: [BoundListener] = []
    var tlsContexts: [TLSServerContext] { tlsListeners.compactMap { $0.tls?.load().tls } }
    public private(set) var adminAddress: SocketAddress?

    public init(config: LBConfig, configPath: String?, overrides: CommandLineOverrides, logger: Logger) throws {
        self.config = config
        self.configPath = configPath
        self.overrides = overrides
        self.logger = logger
        loop = try EventLoop()
        workerCount = config.workers.resolved(cores: ProcessInfo.processInfo.activeProcessorCount)
        let state = try ProxyServer.buildState(config: config, previous: nil, workers: workerCount, generation: 1)
        routing = SnapshotPublisher(state)
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
            if let old = reusable[spec.id], old.spec.host == spec.host, old.spec.port == spec.port, !old.isRemoved,
                old.tls == tls
            {
                if old.spec.weight == spec.weight {
                    backends.append(old)
                } else {
                    backends.append(old.reweighted(spec))
                }
            } else {
                let address = try SocketAddress.resolve(host: spec.host, port: spec.port)
                backends.append(Backend(spec: spec, address: address, tls: tls, workers: workers))
            }
        }
        return RoutingState(snapshot: snapshot, backends: backends)
    }

    /// Binds the listeners and installs the signal handlers. Prints one `listening on` line per socket.
    public func start() throws {
        lb_ignore_sigpipe()
        ProxyServer.raiseOpenFileLimit(logger: logger, needed: config.limits.maxClientConnections)
        controlInbox.attach(to: loop)
        let settings = ProxySettings(config: config)
        let worker = Worker(id: 0, loop: loop, settings: settings, routing: routing)
        let logSpec: (format: AccessLog.Format, path: String)?
        switch config.accessLog.format {
        case .off: logSpec = nil
        case .common: logSpec = (.common, config.accessLog.path)
        case .json: logSpec = (.json, config.accessLog.path)
        }
        if let logSpec { worker.accessLog = try AccessLog(loop: loop, format: logSpec.format, path: logSpec.path) }
        controlWorker = worker
        // With several workers every loop binds the same addresses with SO_REUSEPORT and the kernel spreads
        // connections; the first bind fixes the port when the config asks for port 0.
        var bound: [BoundListener] = []
        for listener in config.effectiveListeners {
            let address = try SocketAddress.resolve(host: listener.address.host, port: listener.address.port)
            let tls = try listener.tls.map { (t) throws(SetupError) in
                do {
                    return SnapshotPublisher(try ProxyServer.makeTLSContext(t, http2: listener.http2))
                } catch {
                    throw SetupError("TLS listener \(listener.address): \(error)")
                }
            }
            let at = try worker.listen(on: address, reusePort: workerCount > 1, tls: tls, http2: listener.http2)
            bound.append(BoundListener(address: at, tls: tls, http2: listener.http2))
        }
        proxyAddress = bound.first?.address
        tlsListeners = bound.filter { $0.tls != nil }
        for id in 1..<max(1, workerCount) {
            let t = WorkerThread(id: id, settings: settings, routing: routing, listeners: bound, accessLog: logSpec)
            try t.start()
            threads.append(t)
        }
        for l in bound { announce("lb-server listening on \(l.address) (\(l.tls == nil ? "proxy" : "proxy, tls"))") }
        let adminListen = try SocketAddress.resolve(host: config.admin.listen.host, port: config.admin.listen.port)
        let adminServer = try AdminServer(server: self, address: adminListen)
        admin = adminServer
        adminAddress = adminServer.boundAddress
        announce("lb-server listening on \(adminServer.boundAddress) (admin)")
        logger.info("started", metadata: [
            "servers": "\(routing.load().backends.count)", "algorithm": "\(config.routing.algorithm.rawValue)",
            "hash": "\(config.routing.hash.rawValue)", "key": "\(config.routingKey)", "workers": "\(workerCount)",
        ])
        for sig in [SIGINT, SIGTERM] {
            signals.append(SignalWatcher(loop: loop, signal: sig) { [unowned self] signum in
                self.beginShutdown(signal: signum)
            })
        }
        signals.append(SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in self.reload() })
        health = HealthChecker(loop: loop, logger: logger)
        health?.sync(with: routing.load(), config: config)
    }

    private func announce(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// Runs until shutdown completes. Returns the process exit status.
    public func run() -> Int32 {
        loop.run()
        for t in threads { t.join() }
        let open = loop.close()
        if open != 0 {
            logger.error("handles still open at exit", metadata: ["count": "\(open)"])
        }
        logger.info("stopped")
        return 0
    }

    // MARK: shutdown

    /// SIGTERM/SIGINT: stop accepting, finish in-flight requests with `Connection: close`, then close every
    /// handle; in-flight work still running at the deadline (`timeouts.shutdown_grace`) is cut.
    func beginShutdown(signal: Int32) {
        if isShuttingDown {
            logger.warning("second signal: closing now")
            finishShutdown()
            return
        }
        isShuttingDown = true
        logger.info("shutting down", metadata: ["signal": "\(signal)", "grace_ms": "\(config.timeouts[.shutdownGrace])"])
        controlWorker?.beginDrain()
        for t in threads { t.beginDrain() }
        admin?.close()
        health?.stop()
        let deadline = LoopTimer(loop: loop) { [unowned self] in
            self.logger.warning("shutdown grace period over: closing in-flight connections")
            self.finishShutdown()
        }
        deadline.start(timeout: config.timeouts[.shutdownGrace])
        shutdownTimer = deadline
        let poll = LoopTimer(loop: loop) { [unowned self] in
            if self.controlWorker?.isIdle ?? true, self.threads.allSatisfy({ $0.isDone }) {
                self.finishShutdown()
            }
        }
        poll.start(timeout: 0, repeat: 20)
        shutdownPoll = poll
    }

    private func finishShutdown() {
        controlWorker?.closeAll()
        for t in threads where !t.isDone { t.closeNow() }
        admin?.close()
        shutdownTimer?.close()
        shutdownTimer = nil
        shutdownPoll?.close()
        shutdownPoll = nil
        for s in signals { s.close() }
        signals.removeAll()
        controlInbox.close()
    }

    // MARK: changes

    /// SIGHUP: re-read the config file; a valid one replaces servers and routing (connections stay), an invalid
    /// one is logged with every error and the running config stays.
    func reload() {
        guard let path = configPath else {
            logger.warning("SIGHUP ignored: no --config file to reload")
            return
        }
        do {
            // As at startup: `--backend` flags stand in for a file without `servers`.
            let fresh = try ConfigLoader.load(path: path, requireServers: overrides.backends.isEmpty)
                .applying(overrides)
            try apply(fresh, reason: "reload")
            // The file is the whole truth after a reload: admin drains (which it cannot express) end too,
            // like admin-added servers and weights do (see docs/admin-api.md).
            for b in routing.load().backends { b.setDraining(false) }
            // Certificates are read again even when the file did not change: renewed files on disk are the
            // usual reason for a reload.
            reloadCertificates(fresh)
        } catch {
            logger.error("config reload failed; keeping the running config", metadata: ["file": "\(path)", "error": "\(error)"])
        }
    }

    /// Publishes a new routing state for `newConfig` (routing and server list) and returns the fraction of the
    /// keyspace whose serving backend changed. Settings that need new sockets (listen addresses, workers) are
    /// reported and left as they are. Throws what `prepare` throws; nothing changes then.
    @discardableResult
    func apply(_ newConfig: LBConfig, reason: String) throws -> Double {
        let previous = routing.load()
        let state = try prepare(newConfig)
        let moved = previous.movedFraction(to: state)
        publish(state, config: newConfig, reason: reason, movedFraction: moved)
        return moved
    }

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
    func publish(_ state: RoutingState, config newConfig: LBConfig, reason: String, movedFraction moved: Double) {
        let previous = routing.load()
        // A reweighted server is a new `Backend` sharing the old one's flags: only servers whose id left, or
        // whose address changed (a fresh `Backend`), are removed.
        for b in previous.backends where !state.keepsBackend(of: b) {
            b.markRemoved()
        }
        routing.publish(state)
        health?.sync(with: state, config: newConfig)
        controlWorker?.closeIdleUpstreamsOfRemovedBackends(previous)
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
        logger.info("config applied", metadata: [
            "reason": "\(reason)", "generation": "\(state.generation)", "servers": "\(state.backends.count)",
            "moved_fraction": "\(moved)",
        ])
    }
}

import LBCore

extension ProxyServer {
    /// SIGHUP: re-read the config file; a valid one replaces servers and routing (connections stay), an invalid
    /// one is logged with every error and the running config stays.
    ///
    /// Without a state file the file is the whole truth after a reload: servers added at runtime leave, weights
    /// return to the file's and drains end (see docs/admin-api.md). With one, the state file is read again and
    /// its changes are laid over the new file's servers exactly as at start (`RuntimeChanges` states the
    /// precedence); a state file that cannot be read or applied is logged and the file's servers apply alone.
    func reload() {
        guard let path = configPath else {
            logger.warning("SIGHUP ignored: no --config file to reload")
            return
        }
        guard !isShuttingDown, takeover == nil else {
            logger.warning("SIGHUP ignored: this process is draining or still taking over")
            return
        }
        SystemdNotify.reloading()
        do {
            // As at startup: `--backend` flags stand in for a file without `servers`.
            let fresh = try ConfigLoader.load(path: path, requireServers: !overrides.suppliesServers)
                .applying(overrides)
            try apply(reloaded: fresh)
            // Certificates are read again even when the file did not change: renewed files on disk are the
            // usual reason for a reload.
            reloadCertificates(fresh)
        } catch {
            logger.error("config reload failed; keeping the running config", metadata: ["file": "\(path)", "error": "\(error)"])
        }
        SystemdNotify.ready(status: "serving")
    }

    /// Publishes `fresh` (a reloaded config) with the state file's changes laid over its servers, and sets
    /// every server's drain flag to what the state file says (none drained without one). Throws what `prepare`
    /// throws for `fresh` itself; changes that cannot be applied reject the state file instead.
    private func apply(reloaded fresh: LBConfig) throws {
        var target = fresh
        // With etcd or DNS as the source the file has no servers: the running set is the source's and stays.
        if etcdSource != nil || dnsSource != nil { target.servers = config.servers }
        var drained: Set<String> = []
        let fromFile = stateFile?.read()
        if let fromFile { (target.servers, drained) = fromFile.applied(to: fresh.servers) }
        let previous = routing.load()
        let state: RoutingState
        do {
            state = try prepare(target)
        } catch where fromFile.map({ !$0.isEmpty }) ?? false {
            // Never half-applied: the file's changes go whole or not at all. The file is blamed only once the
            // config alone builds; otherwise the reload fails with the config's own error and nothing changes.
            target = fresh
            drained = []
            state = try prepare(target)
            stateFile?.reject("its changes cannot be applied to the config's servers: \(error)")
        }
        let moved = previous.movedFraction(to: state) { b in b.isUp && !b.isRemoved && !drained.contains(b.spec.id) }
        // The flags are set before the state is published, so no drained server takes a request in between.
        for b in state.backends { b.setDraining(drained.contains(b.spec.id)) }
        publish(state, config: target, reason: "reload", movedFraction: moved)
        configServers = fresh.servers
        if let stateFile, let fromFile, stateFile.outcome == .applied {
            logger.info("state file applied", metadata: ["file": "\(stateFile.path)", "changes": "\(fromFile.count)"])
            // Changes the new config agrees with leave the file (see `RuntimeChanges`).
            stateFile.writeLogged(RuntimeChanges(from: fresh.servers, to: target.servers, draining: drained))
        }
    }

    /// The config sections a reload does not apply (they are read once at start; TLS certificates and their
    /// settings are reloaded, the set of listeners is not), as config keys, for the one
    /// warning a reload logs when the file changed any of them: an operator's edit is never dropped silently.
    static func restartOnlyChanges(from old: LBConfig, to new: LBConfig) -> [String] {
        var keys: [String] = []
        // The sockets: where they listen and which speak TLS. `listen` is the one-listener form of the same.
        let (was, now) = (old.effectiveListeners, new.effectiveListeners)
        if was.map(\.address) != now.map(\.address) || was.map({ $0.tls == nil }) != now.map({ $0.tls == nil }) {
            keys.append(old.listeners.isEmpty && new.listeners.isEmpty ? "listen" : "listeners")
        }
        if new.admin.listen != old.admin.listen { keys.append("admin.listen") }
        if new.admin.token != old.admin.token { keys.append("admin.token") }
        if new.workers != old.workers { keys.append("workers") }
        if new.routingKey != old.routingKey { keys.append("routing.key") }
        if new.retries != old.retries { keys.append("retries") }
        if new.timeouts != old.timeouts { keys.append("timeouts") }
        if new.limits != old.limits { keys.append("limits") }
        if new.forwarding != old.forwarding { keys.append("forwarding") }
        if new.accessLog != old.accessLog { keys.append("access_log") }
        if new.stats != old.stats { keys.append("stats") }
        if new.busyPolls != old.busyPolls { keys.append("busy_polls") }
        if new.coalesceMicros != old.coalesceMicros { keys.append("coalesce_us") }
        // The state file is opened once: a new path would leave the running changes behind in the old one.
        if new.serverSource != old.serverSource { keys.append("server_source") }
        return keys
    }
}

import LBCore

extension ProxyServer {
    /// SIGHUP: re-read the config file; a valid one replaces servers and routing (connections stay), an invalid
    /// one is logged with every error and the running config stays.
    ///
    /// Without a state file the file is the whole truth after a reload: servers added at runtime leave, weights
    /// return to the file's and drains end (see docs/admin-api.md). With one, the state file is read again and
    /// its changes are laid over the new file's servers exactly as at start (`RuntimeChanges` states the
    /// precedence); a state file that cannot be read or applied is logged and the file's servers apply alone.
    ///
    /// The new routing table is built (new hosts looked up) and measured on the control-work thread (`offLoop`),
    /// in turn with the admin API's server changes (`serializeChange`): the control loop goes on serving the
    /// admin API, health checks and sources meanwhile.
    func reload() {
        guard configPath != nil else {
            logger.warning("SIGHUP ignored: no --config file to reload")
            return
        }
        guard !isShuttingDown, takeover == nil else {
            logger.warning("SIGHUP ignored: this process is draining or still taking over")
            return
        }
        serializeChange { [unowned self] done in reloadNow(attempt: 1, done: done) }
    }

    /// What a reload built on the control-work thread.
    private enum ReloadBuild {
        /// `servers` (with `drained`) build into `state`; `rejectedFile` says why the state file's changes were
        /// left out, when they were.
        case built(state: RoutingState, servers: [ServerSpec], drained: Set<String>, moved: Double, rejectedFile: String?)
        /// The config's own servers do not build: nothing changes.
        case failed(any Error)
    }

    private func reloadNow(attempt: Int, done: @escaping () -> Void) {
        guard let path = configPath, !isShuttingDown else { return done() }
        SystemdNotify.reloading()
        let fresh: LBConfig
        do {
            // As at startup: `--backend` flags stand in for a file without `servers`.
            fresh = try ConfigLoader.load(path: path, requireServers: !overrides.suppliesServers).applying(overrides)
        } catch {
            reloadFailed(path: path, error)
            return done()
        }
        // With etcd or DNS as the source the file has no servers: the running set is the source's and stays.
        let own = etcdSource != nil || dnsSource != nil ? config.servers : fresh.servers
        let fromFile = stateFile?.read()
        let layered = fromFile.map { $0.applied(to: fresh.servers) }
        let previous = routing.load()
        let workers = workerCount
        offLoop({ () -> ReloadBuild in
            func build(_ servers: [ServerSpec], drained: Set<String>) throws -> ReloadBuild {
                var target = fresh
                target.servers = servers
                let state = try ProxyServer.buildState(
                    config: target, previous: previous, workers: workers, generation: previous.generation + 1)
                let moved = previous.movedFraction(to: state) { b in
                    b.isUp && !b.isRemoved && !drained.contains(b.spec.id)
                }
                _ = state.snapshot.keyspaceShares()
                return .built(state: state, servers: servers, drained: drained, moved: moved, rejectedFile: nil)
            }
            do {
                guard let layered else { return try build(own, drained: []) }
                do {
                    return try build(layered.0, drained: layered.1)
                } catch where !(fromFile?.isEmpty ?? true) {
                    // Never half-applied: the file's changes go whole or not at all. The file is blamed only once
                    // the config alone builds; otherwise the reload fails with the config's own error.
                    let fallback = try build(own, drained: [])
                    guard case .built(let state, let servers, let drained, let moved, _) = fallback else { return fallback }
                    return .built(
                        state: state, servers: servers, drained: drained, moved: moved,
                        rejectedFile: "its changes cannot be applied to the config's servers: \(error)")
                }
            } catch {
                return .failed(error)
            }
        }, then: { [weak self] result in
            guard let self else { return }
            if routing.load() !== previous {
                // Something else published meanwhile (a server source): build again from what runs now.
                guard attempt < 3 else {
                    reloadFailed(path: path, ReloadRaced())
                    return done()
                }
                return reloadNow(attempt: attempt + 1, done: done)
            }
            switch result {
            case .failed(let error):
                reloadFailed(path: path, error)
            case .built(let state, let servers, let drained, let moved, let rejectedFile):
                if let rejectedFile { stateFile?.reject(rejectedFile) }
                apply(reloaded: fresh, state: state, servers: servers, drained: drained, moved: moved, fromFile: fromFile)
                // Certificates are read again even when the file did not change: renewed files on disk are the
                // usual reason for a reload.
                reloadCertificates(fresh)
                SystemdNotify.ready(status: "serving")
            }
            done()
        })
    }

    private struct ReloadRaced: Error, CustomStringConvertible {
        var description: String { "the servers kept changing while the reload was built; send SIGHUP again" }
    }

    private func reloadFailed(path: String, _ error: any Error) {
        logger.error("config reload failed; keeping the running config", metadata: ["file": "\(path)", "error": "\(error)"])
        SystemdNotify.ready(status: "serving")
    }

    /// Publishes `state` (`fresh`, a reloaded config, with `servers`: the state file's changes laid over its
    /// servers when they apply) and sets every server's drain flag to what the state file says (none drained
    /// without one).
    private func apply(
        reloaded fresh: LBConfig, state: RoutingState, servers: [ServerSpec], drained: Set<String>, moved: Double,
        fromFile: RuntimeChanges?
    ) {
        var target = fresh
        target.servers = servers
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

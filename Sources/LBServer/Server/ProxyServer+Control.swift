import Foundation
import LBCore

/// Control-socket requests (see `ControlRequest`), on the control loop.
extension ProxyServer {
    func handleControl(_ request: ControlRequest, _ session: ControlSession) {
        switch request {
        case .status:
            session.reply(statusJSON())
        case .upgrade(let binary, let arguments, let directory, let timeoutMs):
            if takeover != nil {
                session.reply(ControlMessage.failure("this lb-server is itself still taking over; try again"))
            } else if isShuttingDown {
                session.reply(ControlMessage.failure("this lb-server is draining; upgrade the one that serves"))
            } else {
                let coordinator = upgrade ?? UpgradeCoordinator(server: self)
                upgrade = coordinator
                coordinator.start(
                    binary: binary, arguments: arguments, directory: directory, timeoutMs: timeoutMs, caller: session)
            }
        case .takeover:
            guard let upgrade, !isShuttingDown else {
                session.reply(ControlMessage.failure("no upgrade in progress"))
                return
            }
            upgrade.takeover(session)
        case .ready(let countersFormat):
            guard let upgrade else {
                session.reply(ControlMessage.failure("no upgrade in progress"))
                return
            }
            upgrade.ready(session, countersFormat: countersFormat)
        case .finalCounters(let payload):
            guard let from = upgradedFrom, session.peerPID == from, takeover == nil else {
                session.reply(ControlMessage.failure("final_counters is only for the process this lb-server replaced"))
                return
            }
            adoptCarriedCounters(payload.object, final: true)
            session.reply(["ok": true])
        case .abort(let reason):
            guard let upgrade else {
                session.reply(ControlMessage.failure("no upgrade in progress"))
                return
            }
            upgrade.abort(session, reason: reason)
        }
    }

    private func statusJSON() -> [String: Any] {
        let state: String
        if takeover != nil {
            state = "taking-over"
        } else if isShuttingDown {
            state = "draining"
        } else if upgrade?.successorPID != nil {
            state = "upgrading"
        } else {
            state = "serving"
        }
        var object: [String: Any] = [
            "ok": true, "pid": Int(getpid()), "version": LBVersion.current, "workers": workerCount, "state": state,
            "uptime_seconds": Int(Date().timeIntervalSince(startedAt)),
        ]
        if let from = upgradedFrom { object["upgraded_from"] = Int(from) }
        if let pid = upgrade?.successorPID { object["successor_pid"] = Int(pid) }
        return object
    }

    /// What `takeover` passes on: every worker's listening sockets, the admin socket, and the server set as it
    /// is now (the admin API's changes included) with drain flags and health.
    func handOffState() -> HandOff {
        let state = routing.load()
        let servers = config.servers.map { spec in
            let b = state.backend(id: spec.id)
            return HandOff.Server(spec: spec, draining: b?.isDraining ?? false, up: b?.isUp ?? true)
        }
        let adminGroup = admin?.descriptor.map { fd in
            HandOff.ListenerGroup(
                configured: config.admin.listen.description, bound: adminAddress?.description ?? "", tls: false,
                descriptors: [fd])
        }
        return HandOff(
            pid: getpid(), version: LBVersion.current, workers: workerCount,
            listeners: listenerGroups.enumerated().map { i, g in
                var g = g
                g.descriptors = g.descriptors.filter { $0 >= 0 }
                // In-memory ticket keys only: a key file is read by the successor itself.
                if i < listenerContexts.count, let keys = listenerContexts[i]?.load().tls.ticketKeys, keys.file == nil {
                    g.ticketKeys = keys.exportForSuccessor()
                }
                return g
            }, admin: adminGroup, servers: servers)
    }

    /// Successor: makes `object` (`CarriedCounters` JSON from the process this one replaced) the base added to
    /// every collection, for the servers this process has at the same address. The answer to `ready` carries a
    /// first one and `final_counters` the last, after the old process drained; each replaces the one before
    /// (it is a later reading of the same growing totals), and nothing replaces the final one. The request
    /// rates move their samples by the difference so the jump is not read as traffic. A malformed object is
    /// logged and changes nothing. Control loop only.
    func adoptCarriedCounters(_ object: [String: Any], final: Bool) {
        guard !carriedFinal else { return }
        var next: CarriedCounters
        do {
            next = try CarriedCounters(json: object)
        } catch {
            logger.warning("the previous process's counters were not taken over", metadata: ["error": "\(error)"])
            return
        }
        next.keepServers(of: routing.load())
        admin?.rate.rebase(from: RequestRate.Totals(carried.snapshot), to: RequestRate.Totals(next.snapshot))
        carried = next
        carriedFinal = final
        logger.info(final ? "took over the previous process's final counters" : "took over the previous process's counters", metadata: [
            "requests": "\(next.snapshot.workers.requests)", "servers": "\(next.addresses.count)",
        ])
    }

    /// Old process, after its loop has ended and every worker has been joined (nothing more can be counted):
    /// sends the final counters to the successor that asked for them in `ready`, over the control socket's
    /// path, which is the successor's by now. Blocking (up to 5 s); a failure is logged, and the successor
    /// keeps the counters the answer to `ready` gave it.
    func sendFinalCounters() {
        guard let successor = finalCountersTo, let path = controlSocketPath else { return }
        var total = StatsSnapshot()
        total.merge(carried.snapshot)
        for t in threads { if let s = t.finalSnapshot { total.merge(s) } }
        let counters = CarriedCounters(total, servers: routing.load().backends.map(\.spec))
        do {
            let client = try ControlClient(path: path)
            defer { client.close() }
            _ = try client.request(["request": "final_counters", "counters": counters.json()], timeout: 5)
            logger.info("sent the final counters to the successor", metadata: [
                "pid": "\(successor)", "requests": "\(total.workers.requests)",
            ])
        } catch {
            logger.warning("the final counters did not reach the successor; it keeps those of the hand-off", metadata: [
                "pid": "\(successor)", "error": "\(error)",
            ])
        }
    }

    /// A successor that gives up before accepting: close everything; `run()` then returns 1.
    func abandonTakeover() {
        exitStatus = 1
        takeover = nil
        control?.stopListening(removeFile: true)  // its temporary name
        admin?.close()
        finishShutdown()
    }
}

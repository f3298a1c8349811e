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
        case .ready:
            guard let upgrade else {
                session.reply(ControlMessage.failure("no upgrade in progress"))
                return
            }
            upgrade.ready(session)
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

    /// A successor that gives up before accepting: close everything; `run()` then returns 1.
    func abandonTakeover() {
        exitStatus = 1
        takeover = nil
        control?.stopListening(removeFile: true)  // its temporary name
        admin?.close()
        finishShutdown()
    }
}

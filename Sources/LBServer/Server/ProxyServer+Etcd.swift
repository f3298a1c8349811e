import Foundation
import Glibc
import LBCore

/// The etcd source's side of the server: starting it, publishing what it reads, and reporting how current it is.
/// Control loop only.
extension ProxyServer {
    /// Starts watching etcd when the config's source is etcd. The servers start empty (the config has none);
    /// the first read publishes etcd's set. Throws `SetupError` when an endpoint does not resolve.
    func startEtcdSource() throws {
        guard config.serverSource.type == .etcd, let settings = config.serverSource.etcd, etcdSource == nil else {
            return
        }
        let source = try EtcdSource(settings: settings, loop: loop, logger: logger) { [unowned self] set, change in
            self.applyEtcd(set, change)
        }
        etcdSource = source
        source.start()
        let id = settings.instanceID ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let registration = EtcdRegistration(
            source: source, instanceID: id, ttlSeconds: settings.leaseTTLSeconds, loop: loop, logger: logger
        ) { [unowned self] in self.registrationValue(id: id) }
        etcdRegistration = registration
        source.onRevision = { [unowned registration] in registration.changed() }
    }

    /// This instance's entry in etcd: who it is, where its admin API listens, and what it has applied.
    private func registrationValue(id: String) -> [UInt8] {
        let source = etcdSource
        let object: [String: Any] = [
            "id": id, "pid": Int(getpid()), "admin": adminAddress.map { "\($0)" } ?? "",
            "revision": source?.set.revision ?? 0, "applied_revision": source?.lastAppliedRevision ?? 0,
            "servers": routing.load().backends.count,
            "started_at_ms": Int64((startedAt.timeIntervalSince1970 * 1000).rounded()),
        ]
        return Array(AdminJSON.text(object).utf8)
    }

    /// Publishes `set`'s servers as an admin change does (`prepare`, then `publish`): unchanged servers
    /// keep their `Backend`, pools and health; only the difference moves keys. A set that cannot be built (a
    /// host that does not resolve, a weight beyond the routing limits) is logged and counted, and routing stays
    /// as it was: never half-applied. Resolving a new host blocks the control loop (getaddrinfo), as for the
    /// admin API.
    func applyEtcd(_ set: EtcdServerSet, _ change: EtcdServerSet.Change) {
        var next = config
        next.servers = set.servers
        let state: RoutingState
        do {
            state = try prepare(next)
        } catch {
            etcdApplyFailures += 1
            logger.error(
                "etcd: the server set cannot be applied; routing stays as it was",
                metadata: [
                    "revision": "\(set.revision)", "error": "\(error)",
                ])
            return
        }
        logger.info(
            "etcd: applying a change",
            metadata: [
                "revision": "\(set.revision)", "added": "\(change.added)", "removed": "\(change.removed)",
                "updated": "\(change.updated)",
            ])
        // No moved fraction: sampling it costs more than building the state (a third of a second in a debug
        // build) on the loop that applies the change; the log names the servers added, removed and updated instead.
        publish(state, config: next, reason: "etcd revision \(set.revision)", movedFraction: nil)
    }

    /// `source` in `/api/health` and `/api/servers`: where the servers come from and, for etcd, whether the set
    /// is current. `stale_seconds` is how long ago it was last known to be etcd's (0 while a watch runs).
    func sourceJSON() -> [String: Any] {
        if let dns = dnsSource { return dnsSourceJSON(dns) }
        guard let source = etcdSource else { return ["type": config.serverSource.type.rawValue] }
        var object: [String: Any] = [
            "type": "etcd", "cluster": source.settings.cluster, "endpoint": "\(source.endpoint)",
            "state": source.isCurrent ? "current" : "stale", "phase": source.phase.rawValue,
            "revision": source.set.revision, "applied_revision": source.lastAppliedRevision,
            "stale_seconds": etcdStaleSeconds(source), "resyncs": source.resyncs, "failures": source.failures,
            "rejected_total": source.set.rejectedTotal, "apply_failures": etcdApplyFailures,
        ]
        if let error = source.lastError { object["last_error"] = error }
        let change = source.lastChange
        object["last_change"] = ["added": change.added, "removed": change.removed, "updated": change.updated]
        if let at = source.lastAppliedAt {
            object["applied_at_ms"] = Int64((at.timeIntervalSince1970 * 1000).rounded())
        }
        if !source.set.rejected.isEmpty {
            object["rejected"] = source.set.rejected.keys.sorted().map {
                ["key": $0, "error": source.set.rejected[$0]!]
            }
        }
        return object
    }

    func etcdStaleSeconds(_ source: EtcdSource) -> Double {
        guard let since = source.staleSinceMs else { return 0 }
        return Double(loop.now - min(since, loop.now)) / 1000
    }
}

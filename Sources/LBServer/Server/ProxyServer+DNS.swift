import Foundation
import LBCore
import LBDNS

/// The DNS source's side of the server: starting it, publishing what it resolves, and reporting its state.
/// Control loop only.
extension ProxyServer {
    /// Starts resolving when the config's source is dns. Returns at once: the servers start empty (503s) and the
    /// first answer publishes them. Throws `SetupError` when c-ares cannot start with the configured resolvers.
    func startDNSSource() throws {
        guard config.serverSource.type == .dns, let settings = config.serverSource.dns, dnsSource == nil else {
            return
        }
        let source = try DNSSource(settings: settings, loop: loop, logger: logger) { [unowned self] servers in
            self.applyDNS(servers)
        }
        dnsSource = source
        source.start()
    }

    /// Publishes `servers` as an admin change does (`prepare`, then `publish`): servers whose address and port
    /// are unchanged keep their `Backend`, pools and health; only the difference moves keys. Every host is an
    /// address, so nothing blocks on resolution here. A set that cannot be built (beyond the routing limits) is
    /// logged and counted, and routing stays as it was.
    func applyDNS(_ servers: [ServerSpec]) {
        var next = config
        next.servers = servers
        let state: RoutingState
        do {
            state = try prepare(next)
        } catch {
            dnsApplyFailures += 1
            logger.error(
                "dns: the server set cannot be applied; routing stays as it was",
                metadata: ["servers": "\(servers.count)", "error": "\(error)"])
            return
        }
        let before = Set(config.servers.map(\.id))
        let after = Set(servers.map(\.id))
        logger.info(
            "dns: applying a change",
            metadata: [
                "added": "\(after.subtracting(before).sorted())", "removed": "\(before.subtracting(after).sorted())",
            ])
        publish(state, config: next, reason: "dns \(dnsSource?.settings.name ?? "")", movedFraction: nil)
    }

    /// `source` in `/api/health` and `/api/servers` for a dns source.
    func dnsSourceJSON(_ source: DNSSource) -> [String: Any] {
        let s = source.settings
        let now = loop.now
        var object: [String: Any] = [
            "type": "dns", "name": s.name, "record_type": s.isSRV ? "SRV" : "A/AAAA", "family": s.family.rawValue,
            "state": source.state, "resolutions": source.resolutions, "answers": source.answers,
            "failures": Dictionary(uniqueKeysWithValues: DNSFailureKind.allCases.map {
                ($0.rawValue, source.failures[$0] ?? 0)
            }),
            "consecutive_failures": source.consecutiveFailures, "apply_failures": dnsApplyFailures,
            "servers": config.servers.map(\.id),
            "resolvers": s.resolvers.isEmpty ? ["system"] : s.resolvers.map(\.description),
            "min_ttl_ms": s.minTTLMs, "max_ttl_ms": s.maxTTLMs, "nxdomain_hold_ms": s.nxdomainHoldMs,
        ]
        if let port = s.port { object["port"] = port }
        if let at = source.lastAnswerAt {
            object["last_answer_at_ms"] = Int64((at.timeIntervalSince1970 * 1000).rounded())
        }
        if let at = source.lastAnswerMs { object["last_answer_age_seconds"] = Double(now - min(at, now)) / 1000 }
        if let ttl = source.lastTTLSeconds { object["ttl_seconds"] = Int(ttl) }
        if let next = source.nextQueryAtMs { object["next_query_in_seconds"] = Double(next - min(next, now)) / 1000 }
        if let since = source.nxdomainSinceMs {
            object["nxdomain_seconds"] = Double(now - min(since, now)) / 1000
        }
        if let error = source.lastError { object["last_error"] = error }
        if !source.unresolvedTargets.isEmpty { object["unresolved_targets"] = source.unresolvedTargets }
        return object
    }
}

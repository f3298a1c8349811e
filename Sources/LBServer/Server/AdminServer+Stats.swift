import Foundation
import LBCore

/// `GET /api/stats`: counters summed over every worker, per server and in total, plus uptime and version.
///
/// Threads: built on the control loop from `stats`, the snapshot every worker copied on its own loop just before
/// this request was handled (`ProxyServer.collectStats`).
/// Server counters cover the servers in the current routing state: a removed server's counts leave the
/// `upstream` totals with it, while `requests`, `responses` and `bytes` (per worker) only ever grow.
extension AdminServer {
    func statsJSON() -> [String: Any] {
        let state = server.routing.load()
        let workers = stats.workers
        var upstream = BackendCounters()
        var perServer: [[String: Any]] = []
        for b in state.backends {
            let snap = stats.backends[b.spec.id] ?? StatsSnapshot.Backend()
            upstream.merge(snap.counters)
            var entry = snap.counters.json
            entry["id"] = b.spec.id
            entry["active_connections"] = snap.activeConnections
            entry["in_flight"] = snap.inFlight
            perServer.append(entry)
        }
        let r = workers.responses.counts
        return [
            "version": LBVersion.current,
            "uptime_seconds": (Date().timeIntervalSince(server.startedAt) * 1000).rounded() / 1000,
            "generation": state.generation,
            "connections": [
                "total": workers.connectionsTotal, "refused": workers.connectionsRefused,
                "accept_errors": workers.acceptErrors,
                "open": stats.openConnections,
            ],
            "requests": [
                "total": workers.requests, "in_flight": workers.inFlight, "no_server": workers.noServer,
                "key_fallbacks": workers.keyFallbacks,
            ],
            "responses": ["1xx": r.0, "2xx": r.1, "3xx": r.2, "4xx": r.3, "5xx": r.4],
            "bytes": ["in": workers.bytesIn, "out": workers.bytesOut],
            "upstream": upstream.json,
            "servers": perServer,
        ]
    }
}

extension BackendCounters {
    /// Field names as `/api/stats` reports them.
    var json: [String: Any] {
        [
            "requests": requests, "connects_opened": connectsOpened, "connect_errors": connectErrors,
            "response_errors": responseErrors, "reused": reused, "retries": retries, "redispatches": redispatches,
            "bytes_in": bytesIn, "bytes_out": bytesOut,
            "responses": [
                "1xx": responses.counts.0, "2xx": responses.counts.1, "3xx": responses.counts.2,
                "4xx": responses.counts.3, "5xx": responses.counts.4,
            ],
        ]
    }
}

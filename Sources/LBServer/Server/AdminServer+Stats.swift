import Foundation
import LBCore

/// `GET /api/stats`: counters summed over every worker, per server and in total, plus uptime and version.
///
/// Threads: read on the control loop. Today the only worker runs on that loop, so its plain counters are read
/// race-free; when workers get loops of their own, each must post a copy of its counters instead.
/// Server counters cover the servers in the current routing state: a removed server's counts leave the
/// `upstream` totals with it, while `requests`, `responses` and `bytes` (per worker) only ever grow.
extension AdminServer {
    func statsJSON() -> [String: Any] {
        let state = server.routing.load()
        var workers = WorkerCounters()
        for w in server.workers {
            let c = w.counters
            workers.connectionsTotal &+= c.connectionsTotal
            workers.connectionsRefused &+= c.connectionsRefused
            workers.acceptErrors &+= c.acceptErrors
            workers.requests &+= c.requests
            workers.noServer &+= c.noServer
            workers.keyFallbacks &+= c.keyFallbacks
            workers.inFlight += c.inFlight
            workers.responses.add(c.responses)
            workers.bytesIn &+= c.bytesIn
            workers.bytesOut &+= c.bytesOut
        }
        var upstream = BackendCounters()
        var perServer: [[String: Any]] = []
        for b in state.backends {
            var sum = BackendCounters()
            var active = 0
            var inFlight = 0
            for slot in b.perWorker {
                sum.add(slot.stats)
                active += slot.activeConnections
                inFlight += slot.inFlight
            }
            upstream.add(sum)
            var entry = sum.json
            entry["id"] = b.spec.id
            entry["active_connections"] = active
            entry["in_flight"] = inFlight
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
                "open": server.workers.reduce(0) { $0 + $1.clients.count },
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
    mutating func add(_ o: BackendCounters) {
        requests &+= o.requests
        responses.add(o.responses)
        connectsOpened &+= o.connectsOpened
        connectErrors &+= o.connectErrors
        responseErrors &+= o.responseErrors
        reused &+= o.reused
        retries &+= o.retries
        redispatches &+= o.redispatches
        bytesIn &+= o.bytesIn
        bytesOut &+= o.bytesOut
    }

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

import Foundation
import LBCore
import LBTLS

/// `GET /api/stats`: counters summed over every worker, per server and in total, plus uptime, version, rates and
/// latency percentiles. Field names are documented in the README's "Observability" section.
///
/// Threads: built on the control loop from `stats`, the snapshot every worker copied on its own loop just before
/// this request was handled (`ProxyServer.collectStats`), and from the health records (control-loop data).
/// Server counters cover the servers in the current routing state: a removed server's counts leave the
/// `upstream` totals with it, while `requests`, `responses` and `bytes` (per worker) only ever grow. After a hot
/// upgrade every counter includes the old process's (`ProxyServer.carried`, added by `collectStats`); gauges
/// are this process's own.
extension AdminServer {
    func statsJSON() -> [String: Any] {
        let state = server.routing.load()
        let workers = stats.workers
        let now = server.loop.now
        let rates = rate.rate(now: now, current: RequestRate.Totals(stats))
        let shares = state.snapshot.keyspaceShares()
        var upstream = BackendCounters()
        var perServer: [[String: Any]] = []
        for (i, b) in state.backends.enumerated() {
            let snap = stats.backends[b.spec.id] ?? StatsSnapshot.Backend()
            upstream.merge(snap.counters)
            var entry = snap.counters.json
            entry["id"] = b.spec.id
            entry["state"] = b.stateName
            entry["weight"] = b.spec.weight
            entry["keyspace_share"] = shares[i]
            entry["active_connections"] = snap.activeConnections
            entry["idle_connections"] = snap.idleConnections
            entry["in_use_connections"] = snap.connectionsInUse
            entry["pool_need"] = snap.poolNeed
            entry["in_flight"] = snap.inFlight
            entry["queue_length"] = snap.queueLength
            entry["learnt_limit"] = snap.learntLimit
            let serverRates = rates.servers[b.spec.id] ?? (0, 0)
            entry["requests_per_second"] = rounded(serverRates.requests)
            entry["errors_per_second"] = rounded(serverRates.errors)
            entry["health"] = b.health.statsJSON(now: now, since: startedAtLoop)
            perServer.append(entry)
        }
        func protocolsJSON(_ w: WorkerCounters) -> [String: Any] {
            let h2 = w.h2
            var goaways: [String: UInt64] = [:]
            for reason in H2GoawayReason.allCases { goaways[reason.name] = h2.goaways[reason.rawValue] }
            var resets: [String: UInt64] = [:]
            for reason in H2ResetReason.allCases { resets[reason.name] = h2.resetsSent[reason.rawValue] }
            return [
                "http1": ["connections": w.http1Connections, "requests": w.requests &- h2.streams],
                "h2": [
                    "connections": h2.connections, "open": h2.open, "streams": h2.streams,
                    "refused_streams": h2.refusedStreams, "goaways_sent": goaways,
                    "goaways_received": h2.goawaysReceived, "resets_sent": resets,
                    "resets_received": h2.resetsReceived,
                ],
            ]
        }
        var clientCertificateRefusals: [String: UInt64] = [:]
        for refusal in TLSClientCertificateRefusal.allCases {
            clientCertificateRefusals[refusal.name] = workers.clientCertificateRefusals[refusal.rawValue]
        }
        var tlsFailureReasons: [String: UInt64] = [:]
        for reason in TLSFailureReason.allCases {
            tlsFailureReasons[reason.name] = workers.tlsFailureReasons[reason.rawValue]
        }
        var proxyErrors: [String: UInt64] = [:]
        for cause in ProxyErrorCause.allCases {
            proxyErrors[String(cause.status)] = workers.proxyErrors[cause.rawValue]
        }
        return [
            "version": LBVersion.current,
            "pid": Int(getpid()),
            "upgraded_from": server.upgradedFrom.map { Int($0) as Any } ?? NSNull(),
            "uptime_seconds": rounded(Date().timeIntervalSince(server.startedAt)),
            "generation": state.generation,
            "workers": stats.workerCount,
            "connections": [
                "total": workers.connectionsTotal, "refused": workers.connectionsRefused,
                "refused_per_client": workers.connectionsRefusedPerClient,
                "header_timeouts": workers.headerTimeouts, "idle_timeouts": workers.idleTimeouts,
                "send_timeouts": workers.sendTimeouts, "slow_reader_pauses": workers.slowReaderPauses,
                "accept_errors": workers.acceptErrors, "tls_failures": workers.tlsFailures,
                "tls_client_certificates_refused": clientCertificateRefusals,
                "tls_failure_reasons": tlsFailureReasons,
                "accepts_deferred": workers.acceptsDeferred,
                "tls_accepts_deferred": [
                    "per_turn": workers.tlsAcceptsDeferred.perTurn, "per_second": workers.tlsAcceptsDeferred.perSecond,
                ],
                "open": stats.openConnections, "http1_active": stats.http1Active,
                "upstream_open": stats.openUpstreams, "upstream_peak": workers.upstreamPeak,
            ],
            "requests": [
                "total": workers.requests, "in_flight": workers.inFlight, "no_server": workers.noServer,
                "panic_routed": workers.panicRouted,
                "key_fallbacks": workers.keyFallbacks, "per_second": rounded(rates.requests),
                "client_aborted": workers.clientAborts, "uploads_aborted": workers.uploadsAborted,
                "rate_window_seconds": rounded(rates.window),
            ],
            "responses": workers.responses.json,
            "proxy_errors": proxyErrors,
            "bytes": ["in": workers.bytesIn, "out": workers.bytesOut],
            "latency": ["request": workers.requestLatency.json],
            "upstream": upstream.json,
            "event_loop": ["coalesced_sleeps": stats.coalescedSleeps],
            "protocols": protocolsJSON(workers),
            "servers": perServer,
            "certificates": certificatesJSON(),
        ]
    }

    /// Three decimals: enough for rates and seconds, and short JSON.
    func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}

extension Backend {
    /// `up`, `down` or `draining`, as the admin API and metrics name it (a drain shows even while down).
    var stateName: String { stateName(draining: isDraining) }

    /// The name with `draining` in place of the live flag (a change the admin API is about to make).
    func stateName(draining: Bool) -> String { draining ? "draining" : (isUp ? "up" : "down") }
}

extension BackendCounters {
    /// Field names as `/api/stats` reports them.
    var json: [String: Any] {
        [
            "requests": requests, "connects_opened": connectsOpened, "connect_errors": connectErrors,
            "response_errors": responseErrors, "reused": reused, "reuse_ratio": reuseRatio,
            "pool_purged": purged, "pool_full": poolFull, "retries": retries, "redispatches": redispatches,
            "queue": ["queued": queued, "timeouts": queueTimeouts, "full": queueFull, "peak": peakQueue],
            "limits_learnt": limitsLearnt,
            "peak_connections": peakConnections,
            "bytes_in": bytesIn, "bytes_out": bytesOut,
            "responses": responses.json,
            "tls": [
                "handshakes": tlsHandshakes, "resumed": tlsResumed,
                "certificate_rejected": tlsCertificateRejections, "handshake_failures": tlsHandshakeFailures,
            ],
            "latency": ["connect": connectLatency.json, "response": responseLatency.json],
        ]
    }
}

extension BackendCounters {
    /// Of the connections handed to requests, the share that came from a pool: reused / (reused + opened), four
    /// decimals; 0 before the first.
    var reuseRatio: Double {
        let handed = reused &+ connectsOpened
        guard handed > 0 else { return 0 }
        return (Double(reused) / Double(handed) * 10_000).rounded() / 10_000
    }
}

extension Latency {
    /// `{"count", "p50", "p90", "p99", "max"}`, in seconds (microsecond resolution, percentiles within 1%).
    var json: [String: Any] {
        func s(_ v: Double) -> Double { (v * 1e6).rounded() / 1e6 }
        return [
            "count": count, "p50": s(seconds(atPercentile: 50)), "p90": s(seconds(atPercentile: 90)),
            "p99": s(seconds(atPercentile: 99)), "max": s(maxSeconds),
        ]
    }
}

extension BackendHealth {
    /// The health side of one server in `/api/stats`; `now` is the loop clock (ms), the clock `HealthState` runs on.
    /// A server that never changed state counts from `since` (the balancer's start on that clock): its record is
    /// created at time 0.
    func statsJSON(now: UInt64, since start: UInt64) -> [String: Any] {
        let state = snapshot.state
        return [
            "check_failures": state.failures, "transitions": state.transitions,
            "consecutive_failures": state.consecutiveFailures,
            "passive_consecutive_failures": consecutivePassiveFailures,
            "seconds_since_change": Double(state.msSinceChange(now: now, notBefore: start)) / 1000,
            "downtime_seconds": Double(state.downtimeMs(now: now)) / 1000,
            "last_check": lastCheckJSON(),
        ]
    }
}

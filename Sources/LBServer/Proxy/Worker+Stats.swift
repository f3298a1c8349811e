extension Worker {
    /// This worker's share, taken on its loop thread.
    func snapshot() -> StatsSnapshot {
        var s = StatsSnapshot()
        s.workerCount = 1
        s.workers = counters
        s.openConnections = clients.count
        s.http1Active = requestStatesInUse
        s.openUpstreams = openUpstreams
        s.coalescedSleeps = loop.coalescedSleeps
        for b in routing.load().backends {
            let slot = b.slot(self)
            s.backends[b.spec.id] = StatsSnapshot.Backend(
                counters: slot.stats, activeConnections: slot.activeConnections, idleConnections: slot.idle.count,
                inFlight: slot.inFlight, poolNeed: slot.demand.need, queueLength: slot.queued,
                learntLimit: slot.learntLimit)
        }
        return s
    }

    /// Only what the per-second request rate needs: requests, and each server's requests and 5xx responses.
    /// The sampler runs every second, and a full `snapshot` would copy every server's two latency histograms
    /// (tens of KB each): with 1,000 servers the copy, and the copy-on-write the next recorded latency then
    /// makes on this loop, cost the serving worker more than the requests' own routing did.
    func rateTotals() -> RequestRate.Totals {
        var totals = RequestRate.Totals(requests: counters.requests)
        let backends = routing.load().backends
        totals.servers.reserveCapacity(backends.count)
        for b in backends {
            let stats = b.slot(self).stats
            totals.servers[b.spec.id] = (stats.requests, stats.responses.counts.4)
        }
        return totals
    }
}

extension Worker {
    /// This worker's share, taken on its loop thread.
    func snapshot() -> StatsSnapshot {
        var s = StatsSnapshot()
        s.workerCount = 1
        s.workers = counters
        s.openConnections = clients.count
        s.coalescedSleeps = loop.coalescedSleeps
        for b in routing.load().backends {
            let slot = b.slot(self)
            s.backends[b.spec.id] = StatsSnapshot.Backend(
                counters: slot.stats, activeConnections: slot.activeConnections, idleConnections: slot.idle.count,
                inFlight: slot.inFlight, poolNeed: slot.demand.need, queueLength: slot.queued)
        }
        return s
    }
}

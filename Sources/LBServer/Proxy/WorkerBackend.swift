import LBTLS

/// One worker's view of a backend: its keep-alive pool and plain counters (loop thread only). The worker's
/// connections keep these through the calls below; stats readers only read.
final class WorkerBackend {
    /// Idle keep-alive connections: the newest is reused first (warm sockets), the oldest purged first.
    var idle = IdlePool<UpstreamConnection>()
    /// Open connections: connecting, busy and idle.
    private(set) var activeConnections = 0
    /// Requests of this worker assigned to this backend now (bounded load reads it).
    fileprivate(set) var inFlight = 0
    /// Recent peak of connections in use, which decides how many idle ones the purge keeps.
    private(set) var demand = PoolDemand()
    var stats = BackendCounters()
    /// The TLS session to resume on this worker's next connection to the backend (TLS backends only).
    let tlsSessions = TLSClientSessionCache()

    /// Connections open and not idle in the pool: connecting, carrying an exchange, or tunnelling.
    var connectionsInUse: Int { activeConnections - idle.count }

    /// The most recently pooled live connection, counted as a reuse; nil when none is idle.
    func takeIdle() -> UpstreamConnection? {
        while let up = idle.popNewest() {
            // Its idle timeout fired, or the backend closed it: the close is under way, and its callback will
            // find it out of the pool already.
            if up.isClosing { continue }
            stats.reused &+= 1
            demand.connectionsInUse(connectionsInUse)
            return up
        }
        return nil
    }

    func connectionOpened() {
        activeConnections += 1
        stats.peakConnections = max(stats.peakConnections, activeConnections)
        stats.connectsOpened &+= 1
        demand.connectionsInUse(connectionsInUse)
    }

    func connectionClosed(_ up: UpstreamConnection) {
        activeConnections -= 1
        idle.remove(up)
    }

    /// One purge interval ended: closes the idle connections beyond what recent demand needed, oldest first, and
    /// counts them. The work is bounded by the pool's size; nothing here runs per request.
    func purgeIdle() {
        var close = demand.purge(idle: idle.count, inUse: connectionsInUse)
        while close > 0, let up = idle.popOldest() {
            if up.isClosing { continue }
            up.close()
            stats.purged &+= 1
            close -= 1
        }
    }

    /// A response head arrived: its status class and, when measured, the time since the request went out.
    func responseStarted(_ record: ExchangeRecord, recordLatency: Bool) {
        if recordLatency, let nanos = record.responseNanos { stats.responseLatency.record(nanos: nanos) }
        stats.responses.count(record.status)
    }
}

extension Backend {
    /// `worker`'s slot of this backend: the one place a worker's pool and counters are looked up.
    @inline(__always)
    func slot(_ worker: Worker) -> WorkerBackend { perWorker[worker.id] }
}

extension Worker {
    /// A request is assigned to `backend`: counted until `endUpstreamRequest`.
    func beginUpstreamRequest(_ backend: Backend) -> WorkerBackend {
        let slot = backend.slot(self)
        slot.stats.requests &+= 1
        slot.inFlight += 1
        upstreamInFlight += 1
        return slot
    }

    func endUpstreamRequest(_ slot: WorkerBackend) {
        slot.inFlight -= 1
        upstreamInFlight -= 1
    }
}

extension Worker {
    /// Idle pooled connections of servers that left the routing state are closed; busy ones finish first.
    func closeIdleUpstreamsOfRemovedBackends(_ previous: RoutingState) {
        for b in previous.backends where b.isRemoved {
            b.slot(self).idle.forEach { $0.close() }
        }
    }
}

/// An upstream for one attempt (`Worker.acquireUpstream`).
enum AcquiredUpstream {
    /// Idle in the pool and ready: the exchange can send at once.
    case pooled(UpstreamConnection)
    /// New and connecting for the given owner; it reports `.connected` or a failure.
    case connecting(UpstreamConnection)
    /// No connection object could be made (OpenSSL could not create the TLS session): a failed connect.
    case unavailable
}

extension Worker {
    /// The best remaining candidate for `keyHash` in `state`, skipping servers the exchange `tried`: the
    /// first eligible one, or under bounded load the first under its cap. Nil when none is left.
    func pickServer(in state: RoutingState, keyHash: UInt64, tried: [Int]) -> Int? {
        let backends = state.backends
        return state.snapshot.pick(
            forKeyHash: keyHash,
            isEligible: { i in backends[i].isEligible && !tried.contains(i) },
            load: { i in backends[i].slot(self).inFlight }, totalLoad: upstreamInFlight)
    }

    /// Counts a request against `backend` and gives it an upstream: the newest pooled connection, else a new one
    /// opened for `owner`. The caller keeps the slot to end the request (`endUpstreamRequest`).
    func acquireUpstream(_ backend: Backend, for owner: UpstreamOwner) -> (WorkerBackend, AcquiredUpstream) {
        let slot = beginUpstreamRequest(backend)
        if let up = slot.takeIdle() { return (slot, .pooled(up)) }
        guard let up = UpstreamConnection(worker: self, backend: backend) else { return (slot, .unavailable) }
        up.owner = owner
        up.open()
        return (slot, .connecting(up))
    }
}

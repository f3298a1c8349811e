import LBTLS

/// A request waiting for a backend that is at its `max_connections` on this worker: `ClientConnection` or
/// `H2Stream`. The worker calls back once the libuv callback that freed a slot has returned, at the end of a loop
/// turn, or from its sweep (`Worker.scheduleGrant`), never from inside another connection's call.
protocol QueueWaiter: AnyObject {
    /// Nonzero while queued: the ticket of its queue entry (a cancelled entry is skipped when it comes up).
    var queueTicket: UInt64 { get set }
    /// A connection slot is free for it: acquire the upstream now.
    func queueGranted()
    /// It waited `timeouts.queue`.
    func queueTimedOut()
}

/// A server's `max_connections` and `max_queue` as each worker enforces them: the process-wide numbers split
/// evenly between the workers (rounded up), so workers never coordinate on the data path. A worker's share of
/// the connections is at least 1.
struct WorkerConnectionLimit: Equatable, Sendable {
    let connections: Int
    let queue: Int

    init(_ limit: LBConfig.ServerLimit, workers: Int) {
        let w = max(1, workers)
        connections = max(1, (limit.maxConnections + w - 1) / w)
        queue = (limit.maxQueue + w - 1) / w
    }
}

/// One worker's view of a backend: its keep-alive pool and plain counters (loop thread only). The worker's
/// connections keep these through the calls below; stats readers only read.
final class WorkerBackend {
    /// Idle keep-alive connections: the newest is reused first (warm sockets), the oldest purged first.
    var idle = IdlePool<UpstreamConnection>()
    /// Open connections: connecting, busy and idle. A connection stops counting when its close begins (its
    /// socket is closed then), not at its close callback, which libuv runs only at the end of the loop turn: under
    /// load a turn's poll phase lasts long enough for hundreds of closed connections to pile up there, and they
    /// were counted as open (in the peak, and as demand for the pool).
    private(set) var activeConnections = 0
    /// Requests of this worker assigned to this backend now (bounded load reads it).
    fileprivate(set) var inFlight = 0
    /// Recent peak of connections in use, which decides how many idle ones the purge keeps.
    private(set) var demand = PoolDemand()
    /// Requests waiting now (cancelled entries not counted). Read at every request's end, so it sits with the
    /// other per-request fields: with 1,000 servers each request's slot is a cold object, and every cache line
    /// of it a request touches is a miss.
    private(set) var queued = 0
    /// The limit learnt from the backend (`backendShed`): requests this worker lets it have at once; 0 = none.
    /// Read by every request (`Worker.connectionLimit`), so it sits with the fields above.
    private(set) var learntLimit = 0
    var stats = BackendCounters()
    /// The TLS session to resume on this worker's next connection to the backend (TLS backends only).
    let tlsSessions = TLSClientSessionCache()

    // The queue of requests waiting for a connection slot (the backend is at its limit on this worker), oldest
    // first. A cancelled entry stays until it reaches the front (its ticket no longer matches).
    private var waiting: [(waiter: QueueWaiter, ticket: UInt64, since: UInt64)] = []
    private var waitingHead = 0
    /// The limit the queue was last filled under: grants go on while `inFlight` is below it.
    var queueCap = 0
    /// A grant is scheduled (`Worker.scheduleGrant`).
    var grantScheduled = false
    /// In the worker's list of slots with waiters (for the sweep's expiry).
    var inQueuedList = false

    /// Loop time of the last shed seen or raise of the learnt limit (the raise waits `learntLimitHoldMs` after
    /// either), and of the last time a shed lowered it.
    private var lastShedOrRaiseMs: UInt64 = 0
    private var lastLoweredMs: UInt64 = 0
    /// Open connections below which a closed connection says nothing about the backend's capacity: at such
    /// counts it is a keep-alive timeout or a restart, and a limit would only hold requests back.
    static let learnMinimumConnections = 64
    /// A learnt limit stands this long after the last shed; then it is raised by an eighth per interval, or
    /// forgotten once demand has fallen to half of it with nobody waiting.
    static let learntLimitHoldMs: UInt64 = 5000
    /// Sheds this close together are one signal, and a later window lowers the limit by a sixteenth at most: a
    /// burst of closes (a restart or reload closing every idle connection, or a batch of room made at once) must
    /// not take the limit down by a step per connection.
    static let shedWindowMs: UInt64 = 50

    /// The backend closed, unanswered, a connection this worker had just connected, pooled or reused, with at
    /// least `learnMinimumConnections` open to it (`UpstreamConnection.noteBackendClose`). That is how a server
    /// out of connections makes room (nginx at `worker_connections` closes idle keep-alive connections, and new
    /// ones whose request it has not read, to accept new ones): opening more then only
    /// parks requests in its accept queue, where they wait unseen and out of order, and each accept costs
    /// another keep-alive connection and a retried request. So this worker holds its requests to the server
    /// below what it has open now; while the server goes on shedding, each `shedWindowMs` with a shed lowers the
    /// limit by a sixteenth more, and the rest wait in lb's queue, oldest first. Returns true when the limit was
    /// set or lowered.
    func backendShed(now: UInt64) -> Bool {
        guard activeConnections >= Self.learnMinimumConnections else { return false }
        lastShedOrRaiseMs = now
        if learntLimit > 0 && now &- lastLoweredMs < Self.shedWindowMs { return false }
        let lowered = learntLimit == 0 ? activeConnections - 1 : learntLimit - max(1, learntLimit / 16)
        let limit = max(Self.learnMinimumConnections - 1, lowered)
        guard learntLimit == 0 || limit < learntLimit else { return false }
        lastLoweredMs = now
        learntLimit = limit
        queueCap = min(queueCap, limit)
        stats.limitsLearnt &+= 1
        return true
    }

    /// From the pool purge: a learnt limit is raised by an eighth (at least one) once `learntLimitHoldMs` passed
    /// without a shed and since the last raise, so capacity the backend gained is found again; it is forgotten
    /// once demand fell to half of it with nobody waiting. Raising it past what the backend holds brings the next
    /// shed, which lowers it again. Returns true when the limit went up (waiters may be granted).
    func relaxLearntLimit(now: UInt64) -> Bool {
        guard learntLimit > 0, now &- lastShedOrRaiseMs >= Self.learntLimitHoldMs else { return false }
        lastShedOrRaiseMs = now
        if queued == 0 && inFlight * 2 < learntLimit {
            learntLimit = 0
            return false
        }
        learntLimit += max(1, learntLimit / 8)
        return true
    }

    /// The server refused a connect: it is restarting or down, not making room, so a limit learnt from its
    /// closes no longer says anything (health checking handles a server that is down).
    func forgetLearntLimit() { learntLimit = 0 }

    func enqueue(_ w: QueueWaiter, ticket: UInt64, now: UInt64) {
        w.queueTicket = ticket
        waiting.append((w, ticket, now))
        queued += 1
        stats.queued &+= 1
        stats.peakQueue = max(stats.peakQueue, queued)
    }

    func cancel(_ w: QueueWaiter) {
        guard w.queueTicket != 0 else { return }
        w.queueTicket = 0
        queued -= 1
    }

    /// The oldest live waiter, taken off the queue; nil when none is left.
    func popWaiter() -> QueueWaiter? {
        while waitingHead < waiting.count {
            let e = waiting[waitingHead]
            waitingHead += 1
            if e.waiter.queueTicket == e.ticket {
                e.waiter.queueTicket = 0
                queued -= 1
                compact()
                return e.waiter
            }
        }
        compact()
        return nil
    }

    /// Takes off the queue every waiter that has waited since before `deadline`, oldest first, and tells it.
    func expireWaiters(queuedBefore deadline: UInt64) {
        while waitingHead < waiting.count, waiting[waitingHead].since < deadline {
            let e = waiting[waitingHead]
            waitingHead += 1
            guard e.waiter.queueTicket == e.ticket else { continue }
            e.waiter.queueTicket = 0
            queued -= 1
            stats.queueTimeouts &+= 1
            e.waiter.queueTimedOut()
        }
        compact()
    }

    /// Drops what was taken from the front once it is most of the array, or all of it.
    private func compact() {
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: waiting.capacity <= 1024)
            waitingHead = 0
        } else if waitingHead > 256 && waitingHead * 2 > waiting.count {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
    }

    /// Connections open and not idle in the pool: connecting, carrying an exchange, or tunnelling.
    var connectionsInUse: Int { activeConnections - idle.count }

    /// The most recently pooled live connection, counted as a reuse; nil when none is idle.
    func takeIdle() -> UpstreamConnection? {
        while let up = idle.popNewest() {
            // A closing connection leaves the pool as its close begins (`connectionClosing`); never hand one out.
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

    /// `up` began closing (`UpstreamConnection.streamClosing`): once per connection.
    func connectionClosing(_ up: UpstreamConnection) {
        idle.remove(up)
        connectionGone()
    }

    /// One connection fewer is open.
    func connectionGone() { activeConnections -= 1 }

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
    /// A request is assigned to the backend of `slot`: counted until `endUpstreamRequest`.
    func beginUpstreamRequest(_ slot: WorkerBackend) {
        slot.stats.requests &+= 1
        slot.inFlight += 1
        upstreamInFlight += 1
    }

    func endUpstreamRequest(_ slot: WorkerBackend) {
        slot.inFlight -= 1
        upstreamInFlight -= 1
        if slot.queued > 0 { scheduleGrant(slot) }
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

extension Worker {
    /// This worker's limit on requests to `backend` (whose slot is `slot`) at once and its queue: the configured
    /// `max_connections`, a limit learnt from the backend (`WorkerBackend.backendShed`), or the lower of the two;
    /// nil when neither. At a learnt limit the queue is at least `learntLimitQueue`: those requests would
    /// otherwise wait in the server's accept queue.
    @inline(__always)
    func connectionLimit(_ backend: Backend, _ slot: WorkerBackend) -> (connections: Int, queue: Int)? {
        let learnt = slot.learntLimit
        guard let limit = backend.limit else { return learnt > 0 ? (learnt, settings.learntLimitQueue) : nil }
        guard learnt > 0 && learnt < limit.connections else { return (limit.connections, limit.queue) }
        return (learnt, max(limit.queue, settings.learntLimitQueue))
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
    /// The backend is at its connection limit on this worker: the waiter is queued, and hears `queueGranted`
    /// or `queueTimedOut`. No request is counted against the backend yet.
    case queued
    /// At its limit with a full queue: answered 503 at once.
    case queueFull
}

/// A server chosen for one attempt (`Worker.pickServer`).
struct ServerPick: Equatable {
    /// Index into the routing state's `backends`.
    let index: Int
    /// Chosen by panic routing: the server is down by health, as is every other one that could take the request.
    let panic: Bool
}

extension Worker {
    /// The best remaining candidate for `keyHash` in `state`, skipping servers the exchange `tried`: the
    /// first eligible one, or under bounded load the first under its cap. When none is eligible and every server
    /// left that could take the request (not draining, not removed, weight above 0, not tried) is down by health,
    /// panic routing (`state.panicRouting`) picks among those down servers by the same hash, and the pick is
    /// counted (`counters.panicRouted`). Nil when no server is left, or none is up and panic routing is off.
    ///
    /// The panic walk runs only after the normal one found nothing, so routing while a server is up costs
    /// nothing more. Neither walk allocates or locks. Loop thread.
    func pickServer(in state: RoutingState, keyHash: UInt64, tried: [Int]) -> ServerPick? {
        let backends = state.backends
        if let i = state.snapshot.pick(
            forKeyHash: keyHash,
            isEligible: { i in backends[i].isEligible && !tried.contains(i) },
            load: { i in backends[i].slot(self).inFlight }, totalLoad: upstreamInFlight)
        {
            return ServerPick(index: i, panic: false)
        }
        return state.panicRouting ? pickInPanic(in: state, keyHash: keyHash, tried: tried) : nil
    }

    /// `pickServer`'s fallback. No server is eligible, so any server this accepts is one that health marked down
    /// (or, in a race with the health checker, one that came up since the first walk: routed all the same).
    /// Kept out of line so the common path stays small.
    @inline(never)
    private func pickInPanic(in state: RoutingState, keyHash: UInt64, tried: [Int]) -> ServerPick? {
        let backends = state.backends
        guard
            let i = state.snapshot.pick(
                forKeyHash: keyHash,
                isEligible: { i in backends[i].takesRequestsIgnoringHealth && !tried.contains(i) },
                load: { i in backends[i].slot(self).inFlight }, totalLoad: upstreamInFlight)
        else { return nil }
        counters.panicRouted &+= 1
        return ServerPick(index: i, panic: true)
    }

    /// Counts a request against `backend` and gives it an upstream: the newest pooled connection, else a new one
    /// opened for `owner`. The caller keeps the slot to end the request (`endUpstreamRequest`).
    func acquireUpstream(
        _ backend: Backend, for owner: UpstreamOwner, waiter: QueueWaiter, granted: Bool = false
    ) -> (WorkerBackend, AcquiredUpstream) {
        let slot = backend.slot(self)
        if !granted, let (connections, queue) = connectionLimit(backend, slot) {
            // Waiters go first: a request arriving as a slot frees up does not overtake the queue.
            if slot.inFlight >= connections || slot.queued > 0 {
                if slot.queued >= queue {
                    slot.stats.queueFull &+= 1
                    return (slot, .queueFull)
                }
                slot.queueCap = connections
                nextQueueTicket &+= 1
                slot.enqueue(waiter, ticket: nextQueueTicket, now: loop.now)
                noteQueued(slot)
                return (slot, .queued)
            }
        }
        beginUpstreamRequest(slot)
        if let up = slot.takeIdle() { return (slot, .pooled(up)) }
        guard let up = UpstreamConnection(worker: self, backend: backend) else { return (slot, .unavailable) }
        up.owner = owner
        up.open()
        return (slot, .connecting(up))
    }
}

import Atomics
import LBCore

/// A backend as the running balancer knows it, shared by every worker. Identity is `spec.id`; the same
/// object survives snapshot rebuilds (reweighting, other servers added or removed) so pools and counters
/// persist. Health and drain flags are atomics written by the control loop and read lock-free by workers.
final class Backend: @unchecked Sendable {
    let spec: ServerSpec
    let address: SocketAddress
    /// One slot per worker; each is touched only by its worker's thread.
    let perWorker: [WorkerBackend]

    private let upFlag: ManagedAtomic<Bool>
    private let drainingFlag: ManagedAtomic<Bool>
    /// Set when the server was removed: its idle pooled connections are closed and in-flight ones finish.
    private let removedFlag: ManagedAtomic<Bool>
    /// Passive failure counter and the health checker's record (Health/BackendHealth.swift).
    let health: BackendHealth

    init(spec: ServerSpec, address: SocketAddress, workers: Int) {
        self.spec = spec
        self.address = address
        perWorker = (0..<workers).map { _ in WorkerBackend() }
        upFlag = ManagedAtomic(true)
        drainingFlag = ManagedAtomic(false)
        removedFlag = ManagedAtomic(false)
        health = BackendHealth()
    }

    /// A new spec (e.g. weight) for the same server: pools, counters and health flags are shared.
    init(spec: ServerSpec, address: SocketAddress, sharing other: Backend) {
        self.spec = spec
        self.address = address
        perWorker = other.perWorker
        upFlag = other.upFlag
        drainingFlag = other.drainingFlag
        removedFlag = other.removedFlag
        health = other.health
    }

    var isUp: Bool { upFlag.load(ordering: .relaxed) }
    var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }
    var isRemoved: Bool { removedFlag.load(ordering: .relaxed) }
    /// Takes new requests.
    var isEligible: Bool { isUp && !isDraining && !isRemoved }

    func setUp(_ up: Bool) { upFlag.store(up, ordering: .relaxed) }
    func setDraining(_ d: Bool) { drainingFlag.store(d, ordering: .relaxed) }
    func markRemoved() { removedFlag.store(true, ordering: .relaxed) }
}

/// One worker's view of a backend: its keep-alive pool and plain counters (loop thread only). The worker's
/// connections keep these through the calls below; stats readers only read.
final class WorkerBackend {
    /// Idle keep-alive connections, most recently used last (reused first: warm sockets).
    var idle: [UpstreamConnection] = []
    private(set) var activeConnections = 0
    /// Requests of this worker assigned to this backend now (bounded load reads it).
    fileprivate(set) var inFlight = 0
    var stats = BackendCounters()

    /// The most recently pooled live connection, counted as a reuse; nil when none is idle.
    func takeIdle() -> UpstreamConnection? {
        while let up = idle.popLast() {
            if up.isClosing { continue }
            stats.reused &+= 1
            return up
        }
        return nil
    }

    func connectionOpened() {
        activeConnections += 1
        stats.peakConnections = max(stats.peakConnections, activeConnections)
        stats.connectsOpened &+= 1
    }

    func connectionClosed(_ up: UpstreamConnection, wasIdle: Bool) {
        activeConnections -= 1
        if wasIdle, let i = idle.firstIndex(where: { $0 === up }) { idle.remove(at: i) }
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

/// What the hot path reads: the routing snapshot and the backends aligned with `snapshot.servers`.
/// Immutable; published by swapping one reference.
final class RoutingState: Sendable {
    let snapshot: RoutingSnapshot
    let backends: [Backend]
    /// The snapshot's generation: 1 at start, +1 per published change.
    var generation: UInt64 { snapshot.generation }

    init(snapshot: RoutingSnapshot, backends: [Backend]) {
        precondition(snapshot.servers.count == backends.count)
        self.snapshot = snapshot
        self.backends = backends
    }
}

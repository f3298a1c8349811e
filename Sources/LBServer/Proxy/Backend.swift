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

/// One worker's view of a backend: its keep-alive pool and plain counters (loop thread only).
final class WorkerBackend {
    /// Idle keep-alive connections, most recently used last (reused first: warm sockets).
    var idle: [UpstreamConnection] = []
    var activeConnections = 0
    var inFlight = 0
    var stats = BackendCounters()
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

import Atomics
import LBCore
import LBTLS
import LBUV

/// How connections to one backend speak TLS: the shared client context, the name sent as SNI (nil for an IP
/// address) and the name its certificate must carry.
struct BackendTLS: Sendable, Equatable {
    let context: TLSClientContext
    let serverName: String?
    let verifyName: String

    static func == (a: BackendTLS, b: BackendTLS) -> Bool {
        a.context === b.context && a.serverName == b.serverName && a.verifyName == b.verifyName
    }
}

/// A backend as the running balancer knows it, shared by every worker. Identity is `spec.id`; the same
/// object survives snapshot rebuilds (reweighting, other servers added or removed) so pools and counters
/// persist. Health and drain flags are atomics written by the control loop and read lock-free by workers.
final class Backend: @unchecked Sendable {
    let spec: ServerSpec
    let address: SocketAddress
    /// Set when connections to this backend use TLS.
    let tls: BackendTLS?
    /// `max_connections` / `max_queue`, each worker's share; nil: no limit.
    let limit: WorkerConnectionLimit?
    /// One slot per worker; each is touched only by its worker's thread.
    let perWorker: [WorkerBackend]

    private let upFlag: ManagedAtomic<Bool>
    private let drainingFlag: ManagedAtomic<Bool>
    /// Set when the server was removed: its idle pooled connections are closed and in-flight ones finish.
    private let removedFlag: ManagedAtomic<Bool>
    /// Passive failure counter and the health checker's record (Health/BackendHealth.swift).
    let health: BackendHealth

    init(
        spec: ServerSpec, address: SocketAddress, tls: BackendTLS? = nil, limit: WorkerConnectionLimit? = nil,
        workers: Int
    ) {
        self.spec = spec
        self.address = address
        self.tls = tls
        self.limit = limit
        perWorker = (0..<workers).map { _ in WorkerBackend() }
        upFlag = ManagedAtomic(true)
        drainingFlag = ManagedAtomic(false)
        removedFlag = ManagedAtomic(false)
        health = BackendHealth()
    }

    /// A new spec (e.g. weight) or limit for the same server: pools, counters and health flags are shared.
    init(spec: ServerSpec, address: SocketAddress, sharing other: Backend, limit: WorkerConnectionLimit?) {
        self.spec = spec
        self.address = address
        tls = other.tls
        self.limit = limit
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
    /// Would take new requests but for its health: what panic routing (`Worker.pickServer`) picks from when no
    /// server is eligible.
    var takesRequestsIgnoringHealth: Bool { !isDraining && !isRemoved }

    func setUp(_ up: Bool) { upFlag.store(up, ordering: .relaxed) }
    func setDraining(_ d: Bool) { drainingFlag.store(d, ordering: .relaxed) }
    func markRemoved() { removedFlag.store(true, ordering: .relaxed) }
}

extension Backend {
    /// Same backend (pools, health, counters) with a new weight.
    func reweighted(_ spec: ServerSpec) -> Backend {
        Backend(spec: spec, address: address, sharing: self, limit: limit)
    }
}

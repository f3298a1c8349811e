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

    /// Up, draining and removed (set when the server was removed: its idle pooled connections are closed and
    /// in-flight ones finish), as bits of one atomic word: every request's pick reads a candidate's eligibility,
    /// and one word is one memory access (one cache line among thousands of servers) instead of three.
    private let flags: ManagedAtomic<UInt8>
    private static let upBit: UInt8 = 1, drainingBit: UInt8 = 2, removedBit: UInt8 = 4
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
        flags = ManagedAtomic(Self.upBit)
        health = BackendHealth()
    }

    /// A new spec (e.g. weight) or limit for the same server: pools, counters and health flags are shared.
    init(spec: ServerSpec, address: SocketAddress, sharing other: Backend, limit: WorkerConnectionLimit?) {
        self.spec = spec
        self.address = address
        tls = other.tls
        self.limit = limit
        perWorker = other.perWorker
        flags = other.flags
        health = other.health
    }

    var isUp: Bool { flags.load(ordering: .relaxed) & Self.upBit != 0 }
    var isDraining: Bool { flags.load(ordering: .relaxed) & Self.drainingBit != 0 }
    var isRemoved: Bool { flags.load(ordering: .relaxed) & Self.removedBit != 0 }
    /// Takes new requests: up, neither draining nor removed.
    var isEligible: Bool { flags.load(ordering: .relaxed) == Self.upBit }
    /// Would take new requests but for its health: what panic routing (`Worker.pickServer`) picks from when no
    /// server is eligible.
    var takesRequestsIgnoringHealth: Bool { flags.load(ordering: .relaxed) & (Self.drainingBit | Self.removedBit) == 0 }

    func setUp(_ up: Bool) { set(Self.upBit, up) }
    func setDraining(_ d: Bool) { set(Self.drainingBit, d) }
    func markRemoved() { set(Self.removedBit, true) }

    /// Each flag has one writer at a time (the control loop), but the word is shared: a read-modify-write keeps
    /// a concurrent change to another bit.
    private func set(_ bit: UInt8, _ on: Bool) {
        if on { _ = flags.loadThenBitwiseOr(with: bit, ordering: .relaxed) } else {
            _ = flags.loadThenBitwiseAnd(with: ~bit, ordering: .relaxed)
        }
    }
}

extension Backend {
    /// Same backend (pools, health, counters) with a new weight.
    func reweighted(_ spec: ServerSpec) -> Backend {
        Backend(spec: spec, address: address, sharing: self, limit: limit)
    }
}

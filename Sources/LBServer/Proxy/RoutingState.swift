import LBCore

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

import LBCore

/// What the hot path reads: the routing snapshot and the backends aligned with `snapshot.servers`.
/// Immutable; published by swapping one reference.
final class RoutingState: Sendable {
    let snapshot: RoutingSnapshot
    let backends: [Backend]
    /// `health_check.panic`: when no server that could take a request is up, it goes by its hash to the down
    /// ones (`Worker.pickServer`). Part of the state, so a reload that changes it publishes it with the rest.
    let panicRouting: Bool
    /// The snapshot's generation: 1 at start, +1 per published change.
    var generation: UInt64 { snapshot.generation }

    init(snapshot: RoutingSnapshot, backends: [Backend], panicRouting: Bool = true) {
        precondition(snapshot.servers.count == backends.count)
        self.snapshot = snapshot
        self.backends = backends
        self.panicRouting = panicRouting
    }

    /// Panic routing is happening: it is on, some server could take requests (weight above 0, not draining,
    /// not removed), and every such server is down by health. Requests then go to down servers. O(servers):
    /// for the admin API, never the data path (a worker sees panic per request, in `pickServer`).
    var isInPanic: Bool {
        guard panicRouting else { return false }
        var routable = false
        for (i, b) in backends.enumerated() where snapshot.servers[i].weight > 0 && b.takesRequestsIgnoringHealth {
            if b.isUp { return false }
            routable = true
        }
        return routable
    }
}

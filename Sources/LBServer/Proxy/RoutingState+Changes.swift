import LBCore

extension RoutingState {
    /// The backend with this id, or nil.
    func backend(id: String) -> Backend? { snapshot.index(of: id).map { backends[$0] } }

    /// True when this state carries `old`'s server on: the same object, or a reweighted copy sharing its
    /// pools, counters and flags. False when the id is gone or now names a fresh `Backend` (new address).
    func keepsBackend(of old: Backend) -> Bool {
        guard let b = backend(id: old.spec.id) else { return false }
        return b === old || b.perWorker.first === old.perWorker.first
    }

    /// Keys sampled when eligibility has to be taken into account (standard error <= 0.002).
    static let movedSampleCount = 65_536

    /// Fraction of the keyspace whose *serving* backend (first candidate that takes new requests) differs
    /// between `self` with today's flags and `next` with the eligibility `eligibleNext` gives it. Servers are
    /// compared by id, so a reweighted `Backend` object still counts as the same server.
    ///
    /// When every server is eligible on both sides this is `RoutingSnapshot.movedFraction(to:)` (exact for a
    /// one-probe ring and for maglev, sampled otherwise). When a server is down, draining, or about to be
    /// drained, the two sides are sampled over a fixed set of key digests, walking candidates the way the proxy does, so a
    /// drain reports the share of keys the drained server was serving. Bounded load is not modelled.
    ///
    /// Control loop only (reads flags that only the control loop writes); allocates two small arrays.
    func movedFraction(to next: RoutingState, eligibleNext: (Backend) -> Bool = { $0.isEligible }) -> Double {
        let now = backends.map(\.isEligible)
        let after = next.backends.map(eligibleNext)
        if !now.contains(false) && !after.contains(false) {
            return snapshot.movedFraction(to: next.snapshot)
        }
        // A lone drain (or undrain) with everyone else serving: exactly the keys that server owns move.
        if next === self {
            let flipped = now.indices.filter { now[$0] != after[$0] }
            if flipped.count == 1, now.indices.allSatisfy({ $0 == flipped[0] || now[$0] }) {
                return snapshot.keyspaceShares()[flipped[0]]
            }
        }
        // Index in `next` of each of our servers (nil when it is gone).
        let toNext = backends.map { next.snapshot.index(of: $0.spec.id) }
        var keys = SplitMix64(seed: 0x6164_6d69_6e2d_6d76)  // "admin-mv"
        var moved = 0
        for _ in 0..<RoutingState.movedSampleCount {
            let h = keys.next()
            let a = snapshot.pick(forKeyHash: h) { now[$0] }
            let b = next.snapshot.pick(forKeyHash: h) { after[$0] }
            switch (a, b) {
            case (nil, nil): break
            case (let a?, let b?): if toNext[a] != b { moved += 1 }
            default: moved += 1
            }
        }
        return Double(moved) / Double(RoutingState.movedSampleCount)
    }
}

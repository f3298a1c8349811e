/// Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam, SODA 2018), the rule behind
/// HAProxy's `hash-balance-factor` and Envoy's `hash_balance_factor`.
///
/// A candidate is skipped while its load has reached its capacity,
///     capacity(i) = ceil(factor * (totalLoad + 1) * weight(i) / eligibleWeight),
/// which for equal weights is ceil(factor * (totalLoad + 1) / eligibleCount). If every eligible candidate
/// is at capacity the key goes to its first eligible candidate, so a key always has a server while one is
/// eligible. Probing walks `Candidates` and calls the closures; it allocates nothing.
extension RoutingSnapshot {
    /// `pick` with bounded loads when `config.boundedLoad` is set (otherwise plain `pick`).
    /// - `load(i)`: current load of server i (e.g. active requests); `totalLoad`: sum over eligible servers.
    /// Computes the eligible weight with one `isEligible` call per server; callers that track it can use
    /// `pick(forKeyHash:isEligible:load:totalLoad:eligibleWeight:)` and stay O(candidates probed).
    public func pick(forKeyHash h: UInt64, isEligible: (Int) -> Bool, load: (Int) -> Int, totalLoad: Int) -> Int? {
        guard config.boundedLoad != nil else { return pick(forKeyHash: h, isEligible: isEligible) }
        var eligibleWeight = 0
        for i in servers.indices where servers[i].weight > 0 && isEligible(i) { eligibleWeight += servers[i].weight }
        return pick(
            forKeyHash: h, isEligible: isEligible, load: load, totalLoad: totalLoad, eligibleWeight: eligibleWeight)
    }

    /// As above with the caller's sum of weights of eligible servers (equal to the eligible count when all
    /// weights are 1).
    public func pick(
        forKeyHash h: UInt64, isEligible: (Int) -> Bool, load: (Int) -> Int, totalLoad: Int, eligibleWeight: Int
    ) -> Int? {
        guard let factor = config.boundedLoad, eligibleWeight > 0 else {
            return pick(forKeyHash: h, isEligible: isEligible)
        }
        let scaled = factor * Double(max(0, totalLoad) + 1) / Double(eligibleWeight)
        var firstEligible: Int?
        var cursor = table.makeCursor(mixedHash: KeyMix.mix(h))
        while let i = table.next(&cursor) {
            guard isEligible(i) else { continue }
            if firstEligible == nil { firstEligible = i }
            let capacity = (scaled * Double(servers[i].weight)).rounded(.up)
            if Double(load(i)) < capacity { return i }
        }
        return firstEligible
    }
}

/// Weighted rendezvous (highest-random-weight) hashing.
///
/// Server i scores a key with score = -w_i / ln(u), where u in (0, 1) is a hash of (key, server)
/// (Schindelhauer & Schomaker, "Weighted distributed hash tables", 2005; the "logarithmic method").
/// Candidates come in descending score order. Instead of a seen-set, the walk remembers the last
/// (rank, index) it returned and next() takes the best one strictly after it: O(servers) per candidate,
/// nothing allocated, and order is a pure function of ids, weights and the key.
final class Rendezvous: RoutingAlgorithm {
    let servers: [ServerSpec]
    let order: RendezvousOrder

    init(servers: [ServerSpec], config: RoutingConfig) throws(RoutingError) {
        self.servers = servers
        order = RendezvousOrder(servers: servers)
    }

    func makeCursor(mixedHash: UInt64) -> CandidateCursor { CandidateCursor(key: mixedHash) }

    @inline(__always)
    func next(_ cursor: inout CandidateCursor) -> Int? { order.next(&cursor) }

    var tableBytes: Int { order.bytes }

    func exactShares() -> [Double]? { nil }

    func exactMovedFraction(to other: any RoutingAlgorithm) -> Double? { nil }
}

/// The rendezvous preference order, shared by `Rendezvous` and by `Maglev`'s fallback candidates.
///
/// Ranks are UInt64 where smaller is preferred. With equal weights, rank = ~hash (highest hash wins, no
/// floating point). With mixed weights, rank = bit pattern of -ln(u) / w, which is >= 0, so bit patterns
/// order like the values; for equal weights both rules give the same order. Ties break on lower index
/// (lower id). `-ln` is computed by `negativeLog` from IEEE basic operations only, so every platform
/// ranks identically (no dependence on libm rounding).
struct RendezvousOrder: Sendable {
    /// Servers with weight > 0: their index into the snapshot's server list ...
    let indices: [Int]
    /// ... the per-server seed, XXH3-64 of the id with a fixed seed ...
    let seeds: [UInt64]
    /// ... and 1 / weight (only used when weights differ).
    let inverseWeights: [Double]
    let equalWeights: Bool

    static let idSeed: UInt64 = 0x7265_6e64_657a_766f  // "rendezvo"

    init(servers: [ServerSpec]) {
        let active = servers.indices.filter { servers[$0].weight > 0 }
        indices = active
        seeds = active.map { Hashes.xxh3_64(servers[$0].id, seed: RendezvousOrder.idSeed) }
        inverseWeights = active.map { 1.0 / Double(servers[$0].weight) }
        equalWeights = Set(active.map { servers[$0].weight }).count <= 1
    }

    var bytes: Int { indices.count * (MemoryLayout<Int>.stride + MemoryLayout<UInt64>.stride + MemoryLayout<Double>.stride) }

    @inline(__always)
    func rank(slot: Int, key: UInt64) -> UInt64 {
        let h = Hashes.fmix64(key ^ seeds[slot])
        if equalWeights { return ~h }
        // u in (0, 1): 53 random bits plus half an ulp, never 0 or 1.
        let u = (Double(h >> 11) + 0.5) * 0x1p-53
        return (RendezvousOrder.negativeLog(u) * inverseWeights[slot]).bitPattern
    }

    /// The best-ranked server strictly after (cursor.lastRank, cursor.lastIndex), skipping
    /// `cursor.excluded`; updates the cursor. nil when none is left. No allocation.
    @inline(__always)
    func next(_ cursor: inout CandidateCursor) -> Int? {
        let key = cursor.key
        let started = cursor.lastIndex >= 0
        let lastRank = cursor.lastRank
        let lastIndex = cursor.lastIndex
        var bestRank = UInt64.max
        var bestIndex = -1
        indices.withUnsafeBufferPointer { idx in
            for slot in 0..<idx.count {
                let i = idx[slot]
                if i == cursor.excluded { continue }
                let r = rank(slot: slot, key: key)
                // Strictly after the last returned in (rank, index) order ...
                if started && (r < lastRank || (r == lastRank && i <= lastIndex)) { continue }
                // ... and best among those; indices ascend, so `<` keeps the lower index on ties.
                if bestIndex < 0 || r < bestRank {
                    bestRank = r
                    bestIndex = i
                }
            }
        }
        guard bestIndex >= 0 else { return nil }
        cursor.lastRank = bestRank
        cursor.lastIndex = bestIndex
        return bestIndex
    }

    /// -ln(u) for u in (0, 1], from IEEE +, -, *, / only: u = m * 2^e with m in [sqrt(1/2), sqrt(2)),
    /// ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716, series to s^17 (relative error < 1e-15).
    @inline(__always)
    static func negativeLog(_ u: Double) -> Double {
        let bits = u.bitPattern
        var e = Int((bits >> 52) & 0x7ff) - 1023
        var m = Double(bitPattern: (bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000)
        if m > 1.414_213_562_373_095_1 {
            m *= 0.5
            e += 1
        }
        let s = (m - 1) / (m + 1)
        let s2 = s * s
        var p = 1.0 / 17
        p = p * s2 + 1.0 / 15
        p = p * s2 + 1.0 / 13
        p = p * s2 + 1.0 / 11
        p = p * s2 + 1.0 / 9
        p = p * s2 + 1.0 / 7
        p = p * s2 + 1.0 / 5
        p = p * s2 + 1.0 / 3
        p = p * s2 + 1
        let lnm = 2 * s * p
        return -(Double(e) * 0.693_147_180_559_945_3 + lnm)
    }
}

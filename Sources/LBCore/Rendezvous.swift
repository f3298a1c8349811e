/// Weighted rendezvous (highest-random-weight) hashing.
///
/// Server i scores a key with score = -w_i / ln(u), where u in (0, 1) is a hash of (key, server)
/// (Schindelhauer & Schomaker, "Weighted distributed hash tables", 2005; the "logarithmic method").
/// Candidates come in descending score order. Instead of a seen-set, the walk remembers the last
/// (rank, index) it returned and next() takes the best one strictly after it: O(servers) per candidate,
/// nothing allocated, and order is a pure function of ids, weights and the key.
final class Rendezvous: RoutingAlgorithm {
    let order: RendezvousOrder

    init(servers: [ServerSpec], config: RoutingConfig) throws(RoutingError) {
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
    /// `RendezvousOrder.logTable`, held here so lookups skip the global's lazy-initialisation check.
    let logTable: [Double]

    static let idSeed: UInt64 = 0x7265_6e64_657a_766f  // "rendezvo"

    init(servers: [ServerSpec]) {
        let active = servers.indices.filter { servers[$0].weight > 0 }
        indices = active
        seeds = active.map { Hashes.xxh3_64(servers[$0].id, seed: RendezvousOrder.idSeed) }
        inverseWeights = active.map { 1.0 / Double(servers[$0].weight) }
        equalWeights = Set(active.map { servers[$0].weight }).count <= 1
        logTable = RendezvousOrder.logTable
    }

    var bytes: Int {
        indices.count * (MemoryLayout<Int>.stride + MemoryLayout<UInt64>.stride + MemoryLayout<Double>.stride)
    }

    /// Rank of one server for a key: smaller is preferred.
    @inline(__always)
    static func rank(
        hash h: UInt64, inverseWeight: Double, equalWeights: Bool, table: UnsafeBufferPointer<Double>
    ) -> UInt64 {
        if equalWeights { return ~h }
        // u in (0, 1): 53 random bits plus half an ulp, never 0 or 1.
        let u = (Double(h >> 11) + 0.5) * 0x1p-53
        return (RendezvousOrder.negativeLog(u, table: table) * inverseWeight).bitPattern
    }

    /// The best-ranked server strictly after (cursor.lastRank, cursor.lastIndex) in (rank, index) order,
    /// skipping `cursor.excluded`; updates the cursor. nil when none is left. O(servers), no allocation.
    @inline(__always)
    func next(_ cursor: inout CandidateCursor) -> Int? {
        let key = cursor.key
        let excluded = cursor.excluded
        let started = cursor.lastIndex >= 0
        let lastRank = cursor.lastRank
        let lastIndex = cursor.lastIndex
        let equal = equalWeights
        var bestRank = UInt64.max
        var bestIndex = -1
        indices.withUnsafeBufferPointer { idx in
            seeds.withUnsafeBufferPointer { seed in
                inverseWeights.withUnsafeBufferPointer { inverse in
                    logTable.withUnsafeBufferPointer { table in
                        for slot in 0..<idx.count {
                            let r = RendezvousOrder.rank(
                                hash: Hashes.fmix64(key ^ seed[slot]), inverseWeight: inverse[slot],
                                equalWeights: equal,
                                table: table)
                            let i = idx[slot]
                            let after = !started || r > lastRank || (r == lastRank && i > lastIndex)
                            // Indices ascend, so a strict `<` keeps the lower index (lower id) on equal ranks.
                            if after && i != excluded && (bestIndex < 0 || r < bestRank) {
                                bestRank = r
                                bestIndex = i
                            }
                        }
                    }
                }
            }
        }
        guard bestIndex >= 0 else { return nil }
        cursor.lastRank = bestRank
        cursor.lastIndex = bestIndex
        return bestIndex
    }

    /// -ln(u) for u in (0, 1], from IEEE +, -, *, / only (no libm, so every platform ranks identically).
    /// u = 2^e * c_j * (1 + r) where c_j = 1 + j/128 comes from the top 7 mantissa bits, so
    /// ln u = e ln 2 + ln c_j + ln(1 + r) with |r| < 1/128 and ln(1 + r) ~ r - r^2/2 + r^3/3: absolute
    /// error < (1/128)^4 / 4 < 1e-9, i.e. < 1e-6 relative for the top ranks (-ln u ~ 1/servers), far below
    /// sampling noise. No division and a short dependency chain: this runs once per server per key when
    /// weights differ.
    @inline(__always)
    static func negativeLog(_ u: Double, table: UnsafeBufferPointer<Double>) -> Double {
        let bits = u.bitPattern
        let e = Int(bits >> 52) - 1023
        let j = Int((bits >> 45) & 0x7f)
        let m = Double(bitPattern: (bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000)
        // m - c_j is exact (same exponent, c_j's bits are m's top bits); table[2j] = 1/c_j, table[2j+1] = ln c_j.
        let r = (m - (1 + Double(j) * (1.0 / 128))) * table[2 &* j]
        let lnr = r * (1 + r * (-0.5 + r * (1.0 / 3)))
        return -(Double(e) * 0.693_147_180_559_945_3 + (table[2 &* j &+ 1] + lnr))
    }

    /// Interleaved (1/c_j, ln c_j) for c_j = 1 + j/128, j in 0..<128; ln by the atanh series run to
    /// convergence (s = (c - 1)/(c + 1) <= 1/3), so the table is bit-identical everywhere.
    static let logTable: [Double] = (0..<128).flatMap { j -> [Double] in
        let c = 1 + Double(j) / 128
        let s = (c - 1) / (c + 1)
        let s2 = s * s
        var term = s
        var sum = 0.0
        var k = 1.0
        while k < 80 {
            sum += term / k
            term *= s2
            k += 2
        }
        return [1 / c, 2 * sum]
    }
}

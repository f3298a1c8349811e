/// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
/// NSDI 2016, section 3.4), with weight-proportional turns in the population loop.
///
/// Each server with weight > 0 gets a permutation of the table slots: offset = h1(id) mod M,
/// skip = h2(id) mod (M - 1) + 1, slot_j = (offset + j * skip) mod M; M prime makes every permutation
/// complete. Servers take turns claiming their next free preferred slot; in round t a server of weight w
/// takes a turn while claimed * maxWeight < t * w, so entries are proportional to weight (the rule Envoy
/// uses). Lookup is one multiply-high and one load: slot = (mixedKey * M) >> 64.
///
/// Candidates beyond the first come from the rendezvous order over the remaining servers: deterministic,
/// distinct, weight-aware, and a failed server's keys spread evenly over the others.
final class Maglev: RoutingAlgorithm {
    /// Largest accepted table size (a prime; 256 MiB of entries).
    static let maxTableSize = 67_108_859

    let servers: [ServerSpec]
    /// Server index per slot; empty when no server has weight > 0.
    let table: [UInt32]
    let size: Int
    let fallback: RendezvousOrder

    static let offsetSeed: UInt64 = 0x6d61_676c_6576_2d31  // "maglev-1"
    static let skipSeed: UInt64 = 0x6d61_676c_6576_2d32  // "maglev-2"

    init(servers: [ServerSpec], config: RoutingConfig) throws(RoutingError) {
        let m = config.maglevTableSize
        let active = servers.indices.filter { servers[$0].weight > 0 }
        guard m >= 2, m <= Maglev.maxTableSize, Primes.isPrime(m), m >= active.count else {
            throw .invalidTableSize(m)
        }
        self.servers = servers
        size = m
        fallback = RendezvousOrder(servers: servers)
        table = Maglev.populate(servers: servers, active: active, size: m)
    }

    /// The population loop. Terminates because every round gives the heaviest server a turn and each
    /// turn fills one empty slot (a full permutation always reaches one).
    private static func populate(servers: [ServerSpec], active: [Int], size m: Int) -> [UInt32] {
        guard !active.isEmpty else { return [] }
        let n = active.count
        let um = UInt64(m)
        var next = [Int](repeating: 0, count: n)
        var skip = [Int](repeating: 0, count: n)
        var weight = [UInt64](repeating: 0, count: n)
        for (k, i) in active.enumerated() {
            next[k] = Int(Hashes.xxh3_64(servers[i].id, seed: offsetSeed) % um)
            skip[k] = Int(Hashes.xxh3_64(servers[i].id, seed: skipSeed) % (um - 1)) + 1
            weight[k] = UInt64(servers[i].weight)
        }
        let maxWeight = weight.max() ?? 1
        var claimed = [UInt64](repeating: 0, count: n)
        let empty = UInt32.max
        var entries = [UInt32](repeating: empty, count: m)
        var filled = 0
        var round: UInt64 = 0
        entries.withUnsafeMutableBufferPointer { e in
            outer: while true {
                round += 1
                for k in 0..<n {
                    if claimed[k] * maxWeight >= round * weight[k] { continue }
                    var c = next[k]
                    let s = skip[k]
                    while e[c] != empty {
                        c += s
                        if c >= m { c -= m }
                    }
                    e[c] = UInt32(active[k])
                    c += s
                    if c >= m { c -= m }
                    next[k] = c
                    claimed[k] += 1
                    filled += 1
                    if filled == m { break outer }
                }
            }
        }
        return entries
    }

    func makeCursor(mixedHash: UInt64) -> CandidateCursor { CandidateCursor(key: mixedHash) }

    @inline(__always)
    func next(_ cursor: inout CandidateCursor) -> Int? {
        if cursor.position == 0 {
            cursor.position = 1
            guard !table.isEmpty else { return nil }
            let slot = Int(truncatingIfNeeded: cursor.key.multipliedFullWidth(by: UInt64(size)).high)
            let first = table.withUnsafeBufferPointer { Int($0[slot]) }
            cursor.excluded = first
            return first
        }
        return fallback.next(&cursor)
    }

    var tableBytes: Int { table.count * MemoryLayout<UInt32>.stride + fallback.bytes }

    /// Each slot covers 2^64 / M of the mixed keyspace (to within one part in 2^64 / M).
    func exactShares() -> [Double]? {
        var shares = [Double](repeating: 0, count: servers.count)
        guard !table.isEmpty else { return shares }
        for s in table { shares[Int(s)] += 1 }
        return shares.map { $0 / Double(size) }
    }

    /// Exact when both tables have the same size: the fraction of slots whose server id differs.
    func exactMovedFraction(to other: any RoutingAlgorithm) -> Double? {
        guard let other = other as? Maglev, other.size == size else { return nil }
        if table.isEmpty || other.table.isEmpty { return table.isEmpty && other.table.isEmpty ? 0 : 1 }
        let map = ServerIndexMap(from: servers, to: other.servers)
        var moved = 0
        for slot in 0..<size where map[Int(table[slot])] != Int(other.table[slot]) { moved += 1 }
        return Double(moved) / Double(size)
    }
}

import Synchronization

/// One immutable routing table: the server list, the config, and the algorithm's lookup structure.
///
/// Built once (on config load or a membership/weight change) off the data path, then shared by every
/// worker thread through `SnapshotPublisher`; nothing in it changes after `init`, so lookups take no lock.
/// Health changes never rebuild a snapshot: callers skip unhealthy servers through `isEligible`.
/// Server indices returned by lookups index `servers` (sorted by id).
public final class RoutingSnapshot: Sendable {
    /// Largest accepted server weight.
    public static let maxWeight = 1_000_000

    /// Sorted by id; ids are unique.
    public let servers: [ServerSpec]
    public let config: RoutingConfig
    /// Caller-chosen version number (e.g. incremented per publish), reported by the admin API.
    public let generation: UInt64
    public let hasher: KeyHasher
    /// Number of servers with weight > 0, i.e. that can receive new keys.
    public let routableCount: Int

    let table: any RoutingAlgorithm
    private let indexByID: [String: Int]

    /// Validates and builds. Throws `RoutingError` for duplicate ids, weights outside 0...maxWeight,
    /// vnodes < 1, too many ring points, a bad maglev table size, or a bounded-load factor < 1.
    /// An empty list, or one where every weight is 0, builds fine and routes nothing.
    public init(servers: [ServerSpec], config: RoutingConfig, generation: UInt64 = 0) throws(RoutingError) {
        let sorted = servers.sorted()
        var indexByID: [String: Int] = [:]
        indexByID.reserveCapacity(sorted.count)
        for (i, s) in sorted.enumerated() {
            guard s.weight >= 0, s.weight <= RoutingSnapshot.maxWeight else {
                throw .invalidWeight(id: s.id, weight: s.weight)
            }
            guard indexByID.updateValue(i, forKey: s.id) == nil else { throw .duplicateID(s.id) }
        }
        if let factor = config.boundedLoad, !(factor.isFinite && factor >= 1) {
            throw .invalidBoundedLoadFactor(factor)
        }
        // Validate vnodes for every algorithm, so switching algorithm never surfaces an old config error.
        guard config.vnodes >= 1 else { throw .invalidVnodes(config.vnodes) }
        guard RoutingConfig.ringProbeRange.contains(config.ringProbes) else {
            throw .invalidRingProbes(config.ringProbes)
        }
        switch config.algorithm {
        case .ring: table = try Ring(servers: sorted, config: config)
        case .maglev: table = try Maglev(servers: sorted, config: config)
        case .rendezvous: table = try Rendezvous(servers: sorted, config: config)
        }
        self.servers = sorted
        self.config = config
        self.generation = generation
        self.hasher = KeyHasher(config.hash)
        self.indexByID = indexByID
        routableCount = sorted.reduce(0) { $0 + ($1.weight > 0 ? 1 : 0) }
    }

    /// Index into `servers` of the server with this id, or nil.
    public func index(of id: String) -> Int? { indexByID[id] }

    /// The key digest under `config.hash`. Allocation-free except possibly for md5/sha1.
    @inlinable
    public func hashKey(_ key: UnsafeRawBufferPointer) -> UInt64 { hasher.hash(key) }

    /// Distinct server indices in preference order for this key digest, at most `limit` of them; never a
    /// weight-0 server; empty when no server can take keys. Iterating allocates nothing.
    public func candidates(forKeyHash h: UInt64, limit: Int = .max) -> Candidates {
        Candidates(table: table, cursor: table.makeCursor(mixedHash: KeyMix.mix(h)), remaining: max(0, limit))
    }

    /// The first candidate accepted by `isEligible` (callers reject down, draining or already-tried
    /// servers), or nil when none is. Ignores `config.boundedLoad`; see the `load:` overload.
    public func pick(forKeyHash h: UInt64, isEligible: (Int) -> Bool) -> Int? {
        // Walks the table directly rather than through `Candidates`, so the hot path copies no reference
        // (no refcount traffic on the shared table from every worker thread).
        var cursor = table.makeCursor(mixedHash: KeyMix.mix(h))
        while let i = table.next(&cursor) {
            if isEligible(i) { return i }
        }
        return nil
    }

    /// Memory of the lookup structure in bytes.
    public var tableBytes: Int { table.tableBytes }

    /// Share of the keyspace each server owns as first candidate, in `servers` order, summing to 1 (or all
    /// 0 when nothing is routable). Exact for ring and maglev; sampled over 100,000 fixed keys for rendezvous.
    public func keyspaceShares() -> [Double] {
        // Computed once per snapshot (a multi-probe ring sorts every arc; a sample walks 100,000 keys): the
        // admin API asks on every scrape, from the loop that may also serve traffic.
        if let cached = sharesCache.withLock({ $0 }) { return cached }
        let shares = computeKeyspaceShares()
        sharesCache.withLock { $0 = shares }
        return shares
    }

    private let sharesCache = Mutex<[Double]?>(nil)

    private func computeKeyspaceShares() -> [Double] {
        if let exact = table.exactShares() { return exact }
        var counts = [Int](repeating: 0, count: servers.count)
        var keys = SplitMix64(seed: RoutingSnapshot.sampleSeed)
        for _ in 0..<RoutingSnapshot.sampleCount {
            var walk = candidates(forKeyHash: keys.next(), limit: 1)
            if let i = walk.next() { counts[i] += 1 }
        }
        return counts.map { Double($0) / Double(RoutingSnapshot.sampleCount) }
    }

    /// Fraction of keys whose first candidate (compared by server id) differs between `self` and `other`.
    /// Exact ring-to-ring with one probe (arc sweep), ring-to-ring when one server alone changed
    /// (`soleServerMovedFraction`) and maglev-to-maglev of equal size (slot compare); otherwise sampled over a
    /// fixed set of 200,000 keys (standard error <= 0.0012). Both empty = 0.
    public func movedFraction(to other: RoutingSnapshot) -> Double {
        if let exact = table.exactMovedFraction(to: other.table) { return exact }
        if let exact = soleServerMovedFraction(to: other) { return exact }
        let map = ServerIndexMap(from: servers, to: other.servers)
        var moved = 0
        var keys = SplitMix64(seed: RoutingSnapshot.sampleSeed)
        let count = 2 * RoutingSnapshot.sampleCount
        for _ in 0..<count {
            let h = keys.next()
            var a = candidates(forKeyHash: h, limit: 1)
            var b = other.candidates(forKeyHash: h, limit: 1)
            let mine = a.next().map { map[$0] }
            if mine != b.next() { moved += 1 }
        }
        return Double(moved) / Double(count)
    }

    /// Exact for a ring change that touches one server's points alone (it is added, removed or reweighted, and
    /// every other server keeps its id and weight under the same config): the other servers' points are the same
    /// in both rings, so a key's nearest point over its probes changes only to one of that server's new points or
    /// away from one of its removed points. Keys move only to or from that server, and the fraction is the
    /// difference of its exact shares. Nil when the change is of any other shape.
    func soleServerMovedFraction(to other: RoutingSnapshot) -> Double? {
        guard table is Ring, other.table is Ring, config == other.config else { return nil }
        var changed: String?
        var i = 0
        var j = 0
        while i < servers.count || j < other.servers.count {
            let a = i < servers.count ? servers[i] : nil
            let b = j < other.servers.count ? other.servers[j] : nil
            if let a, let b, a.id == b.id {
                if a.weight != b.weight {
                    if changed != nil { return nil }
                    changed = a.id
                }
                i += 1
                j += 1
                continue
            }
            if changed != nil { return nil }
            // Sorted by id: the smaller id is in one table only.
            if let a, b == nil || a.id < b!.id {
                changed = a.id
                i += 1
            } else {
                changed = b!.id
                j += 1
            }
        }
        guard let id = changed else { return 0 }
        let before = index(of: id).map { keyspaceShares()[$0] } ?? 0
        let after = other.index(of: id).map { other.keyspaceShares()[$0] } ?? 0
        return abs(after - before)
    }

    static let sampleSeed: UInt64 = 0x6c62_2d73_616d_706c  // "lb-sampl"
    static let sampleCount = 100_000
}

/// A bounded walk over one key's candidates; see `RoutingSnapshot.candidates(forKeyHash:limit:)`.
/// A plain struct holding one reference and a few integers: creating and iterating it never allocates.
public struct Candidates: IteratorProtocol, Sequence {
    let table: any RoutingAlgorithm
    var cursor: CandidateCursor
    var remaining: Int

    init(table: any RoutingAlgorithm, cursor: CandidateCursor, remaining: Int) {
        self.table = table
        self.cursor = cursor
        self.remaining = remaining
    }

    public mutating func next() -> Int? {
        guard remaining > 0 else { return nil }
        remaining -= 1
        guard let i = table.next(&cursor) else {
            remaining = 0
            return nil
        }
        return i
    }
}

/// The one contract every balancing algorithm implements (ring, maglev, rendezvous).
///
/// An algorithm is built once from a server list that `RoutingSnapshot` has already sorted by id,
/// deduplicated and validated (weights in 0...maxWeight), and is immutable afterwards, so it is shared
/// across threads without locks. Placement depends only on server ids and weights, never list position.
///
/// Lookups work on a *mixed* key hash (`KeyMix.mix` of the caller's digest), so zero-extended 32-bit
/// digests still spread over all 64 bits. A lookup creates a `CandidateCursor` (plain values, no heap)
/// and calls `next` until it returns nil; `next` must return distinct server indices, never one with
/// weight 0, must not allocate, and returns nil once every server with weight > 0 has been returned.
protocol RoutingAlgorithm: AnyObject, Sendable {
    /// Builds the lookup structure. Throws only for configuration the algorithm cannot honour.
    init(servers: [ServerSpec], config: RoutingConfig) throws(RoutingError)

    /// The start of a candidate walk for this mixed key hash.
    func makeCursor(mixedHash: UInt64) -> CandidateCursor

    /// The next candidate in preference order, or nil when exhausted.
    func next(_ cursor: inout CandidateCursor) -> Int?

    /// Bytes held by the lookup structure (tables, arrays), for the bench and the admin API.
    var tableBytes: Int { get }

    /// Exact share of the (mixed) keyspace each server owns as first candidate, or nil if only sampling works.
    func exactShares() -> [Double]?

    /// Exact fraction of the keyspace whose first candidate's id differs in `other`, or nil when there is no
    /// cheap exact answer (different algorithm or geometry); the caller then samples.
    func exactMovedFraction(to other: any RoutingAlgorithm) -> Double?
}

/// Walk state for one lookup; each algorithm interprets the fields it needs. A value type with no
/// references, so keeping one on the stack never allocates.
struct CandidateCursor {
    /// The mixed key hash.
    var key: UInt64
    /// ring: start point index; maglev: 0 before the table entry was returned, 1 after.
    var position: Int = 0
    /// ring: points walked so far.
    var step: Int = 0
    /// rendezvous order: rank and index of the last returned server; index -1 = none yet.
    var lastRank: UInt64 = 0
    var lastIndex: Int = -1
    /// maglev: the server the table returned, excluded from its rendezvous fallback; -1 = none.
    var excluded: Int = -1
    /// ring with several probes: the servers returned so far, 4-byte slots in a tuple (zeroing a tuple is a
    /// couple of stores; every lookup of every algorithm creates a cursor). See `recordReturned`.
    var returned: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var returnedCount = 0
    static let returnedCapacity = 8

    @inline(__always) func hasReturned(_ server: UInt32) -> Bool {
        withUnsafeBytes(of: returned) { raw in
            var i = 0
            while i < returnedCount {
                if raw.load(fromByteOffset: i &* 4, as: UInt32.self) == server { return true }
                i &+= 1
            }
            return false
        }
    }

    /// Records a returned server; at most `returnedCapacity` of them.
    @inline(__always) mutating func recordReturned(_ server: UInt32) {
        precondition(returnedCount < Self.returnedCapacity, "cursor holds \(Self.returnedCapacity) servers")
        let offset = returnedCount &* 4
        withUnsafeMutableBytes(of: &returned) { $0.storeBytes(of: server, toByteOffset: offset, as: UInt32.self) }
        returnedCount &+= 1
    }
}

/// Key mixing shared by all algorithms.
enum KeyMix {
    /// Bijective 64-bit mixer (murmur3 fmix64) applied to every key digest before lookup. Bijective, so a
    /// uniform digest stays uniform and exact keyspace arithmetic on mixed values equals key fractions.
    @inline(__always) static func mix(_ h: UInt64) -> UInt64 { Hashes.fmix64(h) }
}

/// A fixed, deterministic stream of 64-bit key digests (splitmix64), used where an answer has to be
/// sampled (rendezvous shares, moved fraction across algorithms). Same seed, same keys, everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

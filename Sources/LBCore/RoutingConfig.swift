/// Names of the key hash functions, as written in config (`routing.hash`) and on the CLI (`--hash`).
public enum KeyHashName: String, CaseIterable, Sendable {
    case djb2
    case fnv1a32 = "fnv1a-32"
    case fnv1a64 = "fnv1a-64"
    case md5
    case sha1
    case crc32
    case murmur3_32 = "murmur3-32"
    case murmur3_128 = "murmur3-128"
    case xxh3
}

/// Names of the balancing algorithms, as written in config (`routing.algorithm`) and on the CLI (`--algorithm`).
public enum AlgorithmName: String, CaseIterable, Sendable {
    case ring
    case maglev
    case rendezvous
}

/// Everything that shapes a routing table besides the server list.
public struct RoutingConfig: Equatable, Sendable {
    public var algorithm: AlgorithmName
    public var hash: KeyHashName
    /// Ring points per weight unit (`ring` only).
    public var vnodes: Int
    /// Ring positions probed per key (`ring` only); the point nearest after any probe wins. 1 is classic
    /// ketama; more probes even out the keyspace shares at the cost of one more point lookup each.
    public var ringProbes: Int
    /// Lookup table size, a prime (`maglev` only).
    public var maglevTableSize: Int
    /// Bounded-load factor (e.g. 1.25); nil = off.
    public var boundedLoad: Double?

    public static let defaultRingProbes = 3
    /// Accepted `ringProbes`: each probe adds one point lookup per key (about 3 ns at 100 servers in
    /// bench-core), so the range stops at 8.
    public static let ringProbeRange = 1...8

    public init(
        algorithm: AlgorithmName = .ring, hash: KeyHashName = .xxh3, vnodes: Int = 160,
        ringProbes: Int = RoutingConfig.defaultRingProbes, maglevTableSize: Int = 65537, boundedLoad: Double? = nil
    ) {
        self.algorithm = algorithm
        self.hash = hash
        self.vnodes = vnodes
        self.ringProbes = ringProbes
        self.maglevTableSize = maglevTableSize
        self.boundedLoad = boundedLoad
    }
}

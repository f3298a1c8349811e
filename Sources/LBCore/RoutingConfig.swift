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
    /// Lookup table size, a prime (`maglev` only).
    public var maglevTableSize: Int
    /// Bounded-load factor (e.g. 1.25); nil = off.
    public var boundedLoad: Double?

    public init(
        algorithm: AlgorithmName = .ring, hash: KeyHashName = .xxh3, vnodes: Int = 160,
        maglevTableSize: Int = 65537, boundedLoad: Double? = nil
    ) {
        self.algorithm = algorithm
        self.hash = hash
        self.vnodes = vnodes
        self.maglevTableSize = maglevTableSize
        self.boundedLoad = boundedLoad
    }
}

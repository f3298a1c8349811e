import Atomics
import CLibUV
import LBCore

/// `limits.max_connections_per_client`: open client connections per client address, counted across every
/// worker. With several workers the kernel (SO_REUSEPORT) spreads one client's connections over all of them, so
/// a per-worker count would let a client hold `workers ×` the limit; this table is shared by the workers instead,
/// and touched with atomic operations only (no lock, no allocation, two increments per accept and two decrements
/// per close; nothing per request).
///
/// The table has a fixed number of counters; each address is hashed (with a per-process random seed, so a client
/// cannot aim its address at another's counter) to one of them. Addresses that share a counter add up in it, so
/// the count can only be too high, never too low: a collision can refuse a client early, never let one hold more
/// than the limit. A client is refused early only when the addresses it shares its counter with hold, with its
/// own, `limit` connections; with 131,072 counters and 10,000 clients, about 7% of clients share their counter.
/// (Two counters per address with the smaller one counting, a count-min sketch, collides far less, but two
/// workers admitting one address at the same instant can each see the other's increment in only one counter and
/// both pass: a single counter per address is what keeps the limit exact.)
///
/// An IPv6 client is counted by its /64 prefix: one host is usually given a whole /64 and can pick any address in
/// it, so counting single addresses would not limit it at all. IPv4-mapped IPv6 addresses count as IPv4.
///
/// Thread-safety: `admit` and `release` may be called from any worker thread at once.
final class ClientAddressLimit: @unchecked Sendable {
    /// Counters in the table: a power of two; 512 KiB of 32-bit counters, allocated only when the limit is set.
    static let width = 1 << 17

    let limit: Int
    private let seed: UInt64
    /// `width` counters, only ever read and written atomically.
    private let counters: UnsafeMutablePointer<UnsafeAtomic<Int32>.Storage>

    /// A table for at most `limit` connections per address (1...Int32.max).
    init(limit: Int, seed: UInt64? = nil) {
        self.limit = min(limit, Int(Int32.max))
        var random = UInt64(0)
        if seed == nil {
            withUnsafeMutableBytes(of: &random) { raw in _ = uv_random(nil, nil, raw.baseAddress, raw.count, 0, nil) }
        }
        self.seed = seed ?? random
        counters = .allocate(capacity: Self.width)
        counters.initialize(repeating: UnsafeAtomic<Int32>.Storage(0), count: Self.width)
    }

    deinit {
        counters.deinitialize(count: Self.width)
        counters.deallocate()
    }

    /// Where one address is counted: an index in the table. Obtained from `key(for:)`, handed back to `release`.
    struct Key: Equatable {
        let index: Int
    }

    /// The counters of the address in `storage` (IPv4, or the /64 prefix of IPv6); nil for another family.
    func key(for storage: sockaddr_storage) -> Key? {
        // 16 bytes: a family tag, then the address bytes that identify the client.
        var bytes = (UInt64(0), UInt64(0))
        var s = storage
        let known: Bool = withUnsafeMutableBytes(of: &bytes) { out in
            withUnsafeBytes(of: &s) { raw in
                switch Int32(storage.ss_family) {
                case AF_INET:
                    // sockaddr_in: family (2), port (2), address (4).
                    out[0] = 4
                    for i in 0..<4 { out[8 + i] = raw[4 + i] }
                    return true
                case AF_INET6:
                    // sockaddr_in6: family (2), port (2), flow info (4), address (16).
                    let address = raw.baseAddress! + 8
                    let a = UnsafeRawBufferPointer(start: address, count: 16)
                    let mapped = a[0..<10].allSatisfy { $0 == 0 } && a[10] == 0xFF && a[11] == 0xFF
                    if mapped {
                        out[0] = 4
                        for i in 0..<4 { out[8 + i] = a[12 + i] }
                    } else {
                        out[0] = 6
                        for i in 0..<8 { out[8 + i] = a[i] }
                    }
                    return true
                default:
                    return false
                }
            }
        }
        guard known else { return nil }
        return key(hashing: bytes)
    }

    /// The counters of a 16-byte address key (`key(for:)`'s encoding; also what the unit tests feed).
    func key(hashing bytes: (UInt64, UInt64)) -> Key {
        var b = bytes
        let hash = withUnsafeBytes(of: &b) { Hashes.xxh3_64($0, seed: seed) }
        return Key(index: Int(hash & UInt64(Self.width - 1)))
    }

    /// Counts one more connection for `key` if the address holds fewer than `limit`; false (and nothing counted)
    /// when it is at the limit. Each admit counts itself first and takes it back if that went over, so concurrent
    /// admits of one address at the limit's edge may both be refused, never both admitted beyond it.
    func admit(_ key: Key) -> Bool {
        let n = UnsafeAtomic<Int32>(at: counters + key.index).wrappingIncrementThenLoad(ordering: .relaxed)
        if Int(n) <= limit { return true }
        release(key)
        return false
    }

    /// The connection `admit` counted for `key` has closed.
    func release(_ key: Key) {
        UnsafeAtomic<Int32>(at: counters + key.index).wrappingDecrement(ordering: .relaxed)
    }

    /// The count for `key`, for tests.
    func count(_ key: Key) -> Int {
        Int(UnsafeAtomic<Int32>(at: counters + key.index).load(ordering: .relaxed))
    }
}

import CXXHash
import CZlib
import Crypto

/// The key hash functions, one per `KeyHashName`, each over raw bytes.
///
/// Contract: pure functions of their input bytes (and seed), identical on every platform (all multi-byte
/// reads are little-endian). DJB2, FNV-1a and Murmur3 are written here; CRC-32 comes from zlib, XXH3 from
/// libxxhash, MD5/SHA-1 from swift-crypto. None of djb2, fnv1a, murmur3, crc32 or xxh3 allocates.
public enum Hashes {
    /// DJB2 (Bernstein, comp.lang.c 1991): h = h * 33 + c, starting at 5381, modulo 2^32.
    @inlinable
    public static func djb2(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var h: UInt32 = 5381
        for b in bytes { h = (h &<< 5) &+ h &+ UInt32(b) }
        return h
    }

    /// FNV-1a, 32-bit (offset basis 2166136261, prime 16777619).
    @inlinable
    public static func fnv1a32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for b in bytes {
            h ^= UInt32(b)
            h = h &* 16_777_619
        }
        return h
    }

    /// FNV-1a, 64-bit (offset basis 14695981039346656037, prime 1099511628211).
    @inlinable
    public static func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 1_099_511_628_211
        }
        return h
    }

    /// MurmurHash3_x86_32 (Austin Appleby, smhasher), little-endian block reads.
    public static func murmur3_32(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        let n = bytes.count
        var h = seed
        var i = 0
        while i + 4 <= n {
            h ^= mixK32(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            h = rotl32(h, 13)
            h = h &* 5 &+ 0xe654_6b64
            i += 4
        }
        var k: UInt32 = 0
        let tail = n & 3
        if tail >= 3 { k ^= UInt32(bytes[i + 2]) << 16 }
        if tail >= 2 { k ^= UInt32(bytes[i + 1]) << 8 }
        if tail >= 1 {
            k ^= UInt32(bytes[i])
            h ^= mixK32(k)
        }
        h ^= UInt32(truncatingIfNeeded: n)
        return fmix32(h)
    }

    /// The x86_32 block mix of one 4-byte lane: k * c1, rotate 15, * c2.
    @inline(__always) private static func mixK32(_ k: UInt32) -> UInt32 {
        rotl32(k &* 0xcc9e_2d51, 15) &* 0x1b87_3593
    }

    /// MurmurHash3_x64_128 (smhasher). Returns (h1, h2); the canonical 16-byte digest is h1 then h2, each
    /// little-endian, so `h1` is also "the first 8 bytes little-endian".
    public static func murmur3_128(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> (UInt64, UInt64) {
        let n = bytes.count
        var h1 = UInt64(seed)
        var h2 = UInt64(seed)
        var i = 0
        while i + 16 <= n {
            h1 ^= mixK1(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            h1 = rotl64(h1, 27)
            h1 = h1 &+ h2
            h1 = h1 &* 5 &+ 0x52dc_e729
            h2 ^= mixK2(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)))
            h2 = rotl64(h2, 31)
            h2 = h2 &+ h1
            h2 = h2 &* 5 &+ 0x3849_5ab5
            i += 16
        }
        let tail = n & 15
        var k1: UInt64 = 0
        var k2: UInt64 = 0
        // Tail bytes 8...14 feed k2, bytes 0...7 feed k1 (the reference's switch fall-through).
        if tail > 8 {
            for j in stride(from: tail - 1, through: 8, by: -1) { k2 ^= UInt64(bytes[i + j]) << (UInt64(j - 8) * 8) }
            h2 ^= mixK2(k2)
        }
        if tail > 0 {
            for j in stride(from: min(tail, 8) - 1, through: 0, by: -1) {
                k1 ^= UInt64(bytes[i + j]) << (UInt64(j) * 8)
            }
            h1 ^= mixK1(k1)
        }
        h1 ^= UInt64(n)
        h2 ^= UInt64(n)
        h1 = h1 &+ h2
        h2 = h2 &+ h1
        h1 = fmix64(h1)
        h2 = fmix64(h2)
        h1 = h1 &+ h2
        h2 = h2 &+ h1
        return (h1, h2)
    }

    private static let c1_128: UInt64 = 0x87c3_7b91_1142_53d5
    private static let c2_128: UInt64 = 0x4cf5_ad43_2745_937f

    /// The x64_128 mix of the first lane: k * c1, rotate 31, * c2.
    @inline(__always) private static func mixK1(_ k: UInt64) -> UInt64 { rotl64(k &* c1_128, 31) &* c2_128 }

    /// The x64_128 mix of the second lane: k * c2, rotate 33, * c1.
    @inline(__always) private static func mixK2(_ k: UInt64) -> UInt64 { rotl64(k &* c2_128, 33) &* c1_128 }

    /// CRC-32 (IEEE 802.3, reflected, as in zip/gzip), via zlib's `crc32`.
    public static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt = CZlib.crc32(0, nil, 0)
        var base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var left = bytes.count
        // zlib takes a 32-bit length; feed huge inputs in chunks.
        while left > 0 {
            let chunk = min(left, Int(UInt32.max >> 1))
            crc = CZlib.crc32(crc, base, UInt32(chunk))
            base = base.map { $0 + chunk }
            left -= chunk
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// XXH3-64 via libxxhash (seed 0 is the same as the unseeded variant).
    @inlinable
    public static func xxh3_64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        seed == 0
            ? XXH3_64bits(bytes.baseAddress, bytes.count) : XXH3_64bits_withSeed(bytes.baseAddress, bytes.count, seed)
    }

    /// MD5 (RFC 1321) digest bytes, via swift-crypto. Allocates the returned array.
    public static func md5(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { Array(Insecure.MD5.hash(data: bytes)) }

    /// SHA-1 (RFC 3174) digest bytes, via swift-crypto. Allocates the returned array.
    public static func sha1(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { Array(Insecure.SHA1.hash(data: bytes)) }

    /// First 8 bytes of the MD5 digest, read little-endian; what `KeyHasher(.md5)` returns.
    /// Does not build an array, but swift-crypto's hasher may allocate its context internally.
    public static func md5Prefix64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        Insecure.MD5.hash(data: bytes).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    /// First 8 bytes of the SHA-1 digest, read little-endian; what `KeyHasher(.sha1)` returns.
    public static func sha1Prefix64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        Insecure.SHA1.hash(data: bytes).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    @inline(__always) static func rotl32(_ x: UInt32, _ r: UInt32) -> UInt32 { (x &<< r) | (x &>> (32 &- r)) }
    @inline(__always) static func rotl64(_ x: UInt64, _ r: UInt64) -> UInt64 { (x &<< r) | (x &>> (64 &- r)) }

    /// Murmur3's 32-bit finalizer.
    @inline(__always) static func fmix32(_ x: UInt32) -> UInt32 {
        var h = x
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return h
    }

    /// Murmur3's 64-bit finalizer: a bijection on UInt64 with full avalanche.
    @inline(__always) public static func fmix64(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33
        k = k &* 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k = k &* 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }
}

extension Hashes {
    /// XXH3-64 of a string's UTF-8 bytes; used at build time to place servers (ring points, maglev
    /// permutations, rendezvous seeds) so placement depends only on the server id.
    static func xxh3_64(_ string: String, seed: UInt64 = 0) -> UInt64 {
        var s = string
        return s.withUTF8 { xxh3_64(UnsafeRawBufferPointer($0), seed: seed) }
    }
}

/// One 64-bit digest per key, for the configured `KeyHashName`.
///
/// 32-bit functions (djb2, fnv1a-32, crc32, murmur3-32) are zero-extended; md5, sha1 and murmur3-128
/// contribute their first 8 digest bytes read little-endian (for murmur3-128 that is h1). The balancing
/// algorithms pass this digest through a 64-bit mixer (`Hashes.fmix64`) before use, so zero-extended
/// 32-bit digests still cover the whole ring. Allocation-free for every function except possibly md5/sha1.
public struct KeyHasher: Sendable, Equatable {
    public let name: KeyHashName

    public init(_ name: KeyHashName) { self.name = name }

    @inlinable
    public func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        switch name {
        case .xxh3: return Hashes.xxh3_64(bytes)
        case .fnv1a64: return Hashes.fnv1a64(bytes)
        case .fnv1a32: return UInt64(Hashes.fnv1a32(bytes))
        case .djb2: return UInt64(Hashes.djb2(bytes))
        case .crc32: return UInt64(Hashes.crc32(bytes))
        case .murmur3_32: return UInt64(Hashes.murmur3_32(bytes))
        case .murmur3_128: return Hashes.murmur3_128(bytes).0
        case .md5: return Hashes.md5Prefix64(bytes)
        case .sha1: return Hashes.sha1Prefix64(bytes)
        }
    }

    /// Convenience for tests and config-time code: the digest of a string's UTF-8 bytes.
    public func hash(_ string: String) -> UInt64 {
        var s = string
        return s.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }
}

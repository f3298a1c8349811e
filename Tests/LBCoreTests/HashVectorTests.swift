import XCTest

@testable import LBCore

/// Known-answer tests for every key hash function, against published reference outputs.
final class HashVectorTests: XCTestCase {
    private func bytes<R>(_ s: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var s = s
        return s.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    // FNV test vectors from the FNV reference page (isthe.com/chongo/tech/comp/fnv, test_fnv.c) and
    // draft-eastlake-fnv: "", "a", "foobar".
    func testFNV1a32MatchesReferenceVectors() {
        XCTAssertEqual(bytes("") { Hashes.fnv1a32($0) }, 0x811c_9dc5)
        XCTAssertEqual(bytes("a") { Hashes.fnv1a32($0) }, 0xe40c_292c)
        XCTAssertEqual(bytes("foobar") { Hashes.fnv1a32($0) }, 0xbf9c_f968)
    }

    func testFNV1a64MatchesReferenceVectors() {
        XCTAssertEqual(bytes("") { Hashes.fnv1a64($0) }, 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(bytes("a") { Hashes.fnv1a64($0) }, 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(bytes("foobar") { Hashes.fnv1a64($0) }, 0x8594_4171_f739_67e8)
    }

    // DJB2 as published by Bernstein (h = 5381; h = h * 33 + c). "" is the seed itself, "a" = 5381*33+97.
    // "hello" and "foobar" cross-checked against an independent Python implementation.
    func testDJB2MatchesReferenceVectors() {
        XCTAssertEqual(bytes("") { Hashes.djb2($0) }, 5381)
        XCTAssertEqual(bytes("a") { Hashes.djb2($0) }, 177_670)
        XCTAssertEqual(bytes("hello") { Hashes.djb2($0) }, 0x0f92_3099)
        XCTAssertEqual(bytes("foobar") { Hashes.djb2($0) }, 0xfde4_60be)
    }

    // MurmurHash3_x86_32 vectors: smhasher's reference implementation as quoted by the Guava and Python
    // mmh3 test suites: seed 0 "" = 0, seed 1 "" = 0x514E28B7, seed 0xffffffff "" = 0x81F16F39,
    // "hello" = 0x248BFA47, quick-brown-fox = 0x2E4FF723.
    func testMurmur3x86_32MatchesReferenceVectors() {
        XCTAssertEqual(bytes("") { Hashes.murmur3_32($0, seed: 0) }, 0)
        XCTAssertEqual(bytes("") { Hashes.murmur3_32($0, seed: 1) }, 0x514e_28b7)
        XCTAssertEqual(bytes("") { Hashes.murmur3_32($0, seed: 0xffff_ffff) }, 0x81f1_6f39)
        XCTAssertEqual(bytes("hello") { Hashes.murmur3_32($0, seed: 0) }, 0x248b_fa47)
        XCTAssertEqual(bytes("Hello, world!") { Hashes.murmur3_32($0, seed: 1234) }, 0xfaf6_cdb3)
        XCTAssertEqual(bytes("aaaa") { Hashes.murmur3_32($0, seed: 0x9747_b28c) }, 0x5a97_808a)
        XCTAssertEqual(
            bytes("The quick brown fox jumps over the lazy dog") { Hashes.murmur3_32($0, seed: 0) }, 0x2e4f_f723)
    }

    // MurmurHash3_x64_128: the quick-brown-fox digest 6c1b07bc7bbc4be347939ac4a93c437a is the widely
    // published smhasher output; the others match the Python mmh3 binding of the reference C code.
    func testMurmur3x64_128MatchesReferenceVectors() {
        func check(_ s: String, _ seed: UInt32, _ h1: UInt64, _ h2: UInt64, line: UInt = #line) {
            let (a, b) = bytes(s) { Hashes.murmur3_128($0, seed: seed) }
            XCTAssertEqual(a, h1, "h1 for \(s)", line: line)
            XCTAssertEqual(b, h2, "h2 for \(s)", line: line)
        }
        check("", 0, 0, 0)
        check("", 1, 0x4610_abe5_6eff_5cb5, 0x5162_2daa_78f8_3583)
        check("hello", 0, 0xcbd8_a7b3_41bd_9b02, 0x5b1e_906a_48ae_1d19)
        check("Hello, world!", 1234, 0x6113_0e64_aa0a_c6fe, 0x51f9_046d_087e_1b56)
        check("The quick brown fox jumps over the lazy dog", 0, 0xe34b_bc7b_bc07_1b6c, 0x7a43_3ca9_c49a_9347)
    }

    // CRC-32/ISO-HDLC check value for "123456789" (Williams' CRC catalogue): 0xCBF43926.
    func testCRC32MatchesCheckValue() {
        XCTAssertEqual(bytes("123456789") { Hashes.crc32($0) }, 0xcbf4_3926)
        XCTAssertEqual(bytes("") { Hashes.crc32($0) }, 0)
    }

    // RFC 1321 appendix A.5 test suite.
    func testMD5MatchesRFC1321Vectors() {
        XCTAssertEqual(hex(bytes("") { Hashes.md5($0) }), "d41d8cd98f00b204e9800998ecf8427e")
        XCTAssertEqual(hex(bytes("abc") { Hashes.md5($0) }), "900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(hex(bytes("message digest") { Hashes.md5($0) }), "f96b697d7cb7938d525a2f31aaf161d0")
    }

    // RFC 3174 section 7.3 test cases 1 and 2.
    func testSHA1MatchesRFC3174Vectors() {
        XCTAssertEqual(hex(bytes("abc") { Hashes.sha1($0) }), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(
            hex(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") { Hashes.sha1($0) }),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    // XXH3_64bits of the empty input, seed 0: 0x2D06800538D394C2 (xxHash's sanity-check table,
    // cli/xsum_sanity_check.c).
    func testXXH3MatchesReferenceVectors() {
        XCTAssertEqual(bytes("") { Hashes.xxh3_64($0) }, 0x2d06_8005_38d3_94c2)
        XCTAssertEqual(bytes("") { Hashes.xxh3_64($0, seed: 0) }, bytes("") { Hashes.xxh3_64($0) })
        XCTAssertNotEqual(bytes("a") { Hashes.xxh3_64($0, seed: 1) }, bytes("a") { Hashes.xxh3_64($0) })
    }

    /// KeyHasher's documented widening: 32-bit digests zero-extended, long digests' first 8 bytes little-endian.
    func testKeyHasherWidensDigestsAsDocumented() {
        XCTAssertEqual(KeyHasher(.fnv1a32).hash("foobar"), 0xbf9c_f968)
        XCTAssertEqual(KeyHasher(.crc32).hash("123456789"), 0xcbf4_3926)
        XCTAssertEqual(KeyHasher(.djb2).hash("a"), 177_670)
        XCTAssertEqual(KeyHasher(.murmur3_32).hash("hello"), 0x248b_fa47)
        XCTAssertEqual(KeyHasher(.fnv1a64).hash("a"), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(KeyHasher(.xxh3).hash(""), 0x2d06_8005_38d3_94c2)
        XCTAssertEqual(KeyHasher(.murmur3_128).hash("hello"), 0xcbd8_a7b3_41bd_9b02)
        // d41d8cd98f00b204... read little-endian is 0x04b2008fd98c1dd4.
        XCTAssertEqual(KeyHasher(.md5).hash(""), 0x04b2_008f_d98c_1dd4)
        // a9993e364706816a... read little-endian.
        XCTAssertEqual(KeyHasher(.sha1).hash("abc"), 0x6a81_0647_363e_99a9)
    }

    private func hex(_ b: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(b.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}

import CLibUV
import Synchronization
import XCTest

@testable import LBServer

/// `limits.max_connections_per_client`'s shared table: an address is admitted up to the limit and no further,
/// released connections give their slot back, workers admitting one address at once never exceed it, and the key
/// is the IPv4 address or the IPv6 /64.
final class ClientAddressLimitTests: XCTestCase {
    func testAnAddressIsAdmittedUpToTheLimitAndAgainOnceAConnectionCloses() throws {
        let table = ClientAddressLimit(limit: 3, seed: 1)
        let key = try XCTUnwrap(table.key(for: Self.ipv4(10, 0, 0, 1)))
        XCTAssertEqual((0..<5).map { _ in table.admit(key) }, [true, true, true, false, false])
        XCTAssertEqual(table.count(key), 3, "a refusal counts nothing")
        table.release(key)
        XCTAssertTrue(table.admit(key))
        XCTAssertFalse(table.admit(key))
    }

    func testAddressesAreCountedApart() throws {
        let table = ClientAddressLimit(limit: 1, seed: 7)
        // With 131,072 counters, 200 addresses in a row share none with a fixed seed (checked, not assumed).
        let keys = try (0..<200).map { try XCTUnwrap(table.key(for: Self.ipv4(192, 168, UInt8($0 / 250), UInt8($0 % 250)))) }
        XCTAssertEqual(Set(keys.map(\.index)).count, keys.count)
        XCTAssertTrue(keys.allSatisfy { table.admit($0) }, "each address holds its own one connection")
        XCTAssertTrue(keys.allSatisfy { !table.admit($0) })
    }

    func testAnIPv6ClientIsCountedByItsSlash64AndAMappedIPv4AsIPv4() throws {
        let table = ClientAddressLimit(limit: 1, seed: 3)
        let a = try XCTUnwrap(table.key(for: Self.ipv6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 1])))
        let b = try XCTUnwrap(table.key(for: Self.ipv6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [9, 9, 9, 9, 9, 9, 9, 9])))
        let c = try XCTUnwrap(table.key(for: Self.ipv6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2] + [0, 0, 0, 0, 0, 0, 0, 1])))
        XCTAssertEqual(a, b, "one /64 is one client")
        XCTAssertNotEqual(a, c)
        let mapped = try XCTUnwrap(table.key(for: Self.ipv6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 0, 0, 1])))
        XCTAssertEqual(mapped, table.key(for: Self.ipv4(10, 0, 0, 1)))
    }

    /// Four threads admit and release one address as fast as they can: the connections held at once never pass
    /// the limit, and the count ends at what is still held.
    func testConcurrentAdmitsNeverExceedTheLimit() throws {
        let limit = 4
        let table = ClientAddressLimit(limit: limit, seed: 11)
        let key = try XCTUnwrap(table.key(for: Self.ipv4(127, 0, 0, 2)))
        let holding = Atomic<Int>(0)
        let peak = Atomic<Int>(0)
        let stillHeld = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            var mine = 0
            for i in 0..<20_000 {
                if i % 3 == 2, mine > 0 {
                    holding.subtract(1, ordering: .sequentiallyConsistent)
                    table.release(key)
                    mine -= 1
                } else if table.admit(key) {
                    let now = holding.add(1, ordering: .sequentiallyConsistent).newValue
                    peak.max(now, ordering: .relaxed)
                    mine += 1
                }
            }
            stillHeld.add(mine, ordering: .relaxed)
        }
        XCTAssertLessThanOrEqual(peak.load(ordering: .relaxed), limit, "more connections held at once than the limit")
        XCTAssertEqual(peak.load(ordering: .relaxed), limit, "the limit was never reached: the test proves nothing")
        XCTAssertEqual(table.count(key), stillHeld.load(ordering: .relaxed))
    }

    func testTheLimitIsReadAndChecked() throws {
        XCTAssertNil(try parseConfig("{}").limits.maxConnectionsPerClient, "off by default")
        XCTAssertNil(ProxySettings(config: try parseConfig("{}")).perClientLimit)
        let config = try parseConfig(#"{"limits": {"max_connections_per_client": 20}}"#)
        XCTAssertEqual(config.limits.maxConnectionsPerClient, 20)
        XCTAssertEqual(ProxySettings(config: config).perClientLimit?.limit, 20)
        XCTAssertNil(try parseConfig(#"{"limits": {"max_connections_per_client": null}}"#).limits.maxConnectionsPerClient)
        for bad in ["0", "-1", "1.5", #""ten""#, "true"] {
            assertSingleProblem(
                #"{"limits": {"max_connections_per_client": \#(bad)}}"#, startsWith: "limits.max_connections_per_client:")
        }
    }

    static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> sockaddr_storage {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: sa_family_t(AF_INET), as: sa_family_t.self)
            raw[4] = a
            raw[5] = b
            raw[6] = c
            raw[7] = d
        }
        return storage
    }

    static func ipv6(_ bytes: [UInt8]) -> sockaddr_storage {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: sa_family_t(AF_INET6), as: sa_family_t.self)
            for (i, b) in bytes.enumerated() { raw[8 + i] = b }
        }
        return storage
    }
}

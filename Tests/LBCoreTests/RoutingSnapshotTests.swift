import Glibc
import XCTest

@testable import LBCore

/// Edge cases and determinism of `RoutingSnapshot`, for every algorithm.
final class RoutingSnapshotTests: XCTestCase {
    private let everyAlgorithm = AlgorithmName.allCases

    func testEmptyServerListBuildsAndRoutesNothing() throws {
        for algorithm in everyAlgorithm {
            let s = try RoutingSnapshot(servers: [], config: RoutingConfig(algorithm: algorithm))
            XCTAssertEqual(s.routableCount, 0)
            XCTAssertEqual(Array(s.candidates(forKeyHash: 12345)), [], "\(algorithm)")
            XCTAssertNil(s.pick(forKeyHash: 12345, isEligible: { _ in true }), "\(algorithm)")
            XCTAssertNil(s.pick(forKeyHash: 1, isEligible: { _ in true }, load: { _ in 0 }, totalLoad: 0))
            XCTAssertEqual(s.keyspaceShares(), [])
        }
    }

    func testSingleServerGetsEveryKey() throws {
        for algorithm in everyAlgorithm {
            let s = Fixture.snapshot(Fixture.servers(1), algorithm)
            var rng = SplitMix64(seed: 7)
            for _ in 0..<10_000 {
                let h = rng.next()
                XCTAssertEqual(Array(s.candidates(forKeyHash: h)), [0], "\(algorithm)")
            }
            let shares = s.keyspaceShares()
            XCTAssertEqual(shares.count, 1)
            XCTAssertEqual(shares[0], 1.0, accuracy: 1e-9, "\(algorithm)")
        }
    }

    func testAllWeightsZeroGivesNoCandidates() throws {
        for algorithm in everyAlgorithm {
            let s = Fixture.snapshot(Fixture.servers(5, weight: 0), algorithm)
            XCTAssertEqual(Array(s.candidates(forKeyHash: 99)), [], "\(algorithm)")
            XCTAssertNil(s.pick(forKeyHash: 99, isEligible: { _ in true }), "\(algorithm)")
        }
    }

    func testWeightZeroServerIsNeverPickedWhileOthersExist() throws {
        for algorithm in everyAlgorithm {
            var servers = Fixture.servers(10)
            servers[3].weight = 0
            let s = Fixture.snapshot(servers, algorithm)
            var rng = SplitMix64(seed: 3)
            for _ in 0..<20_000 {
                let all = Array(s.candidates(forKeyHash: rng.next()))
                XCTAssertFalse(all.contains(3), "\(algorithm)")
                XCTAssertEqual(all.count, 9, "\(algorithm)")
            }
        }
    }

    func testCandidatesAreDistinctCompleteAndBoundedByLimit() throws {
        for algorithm in everyAlgorithm {
            var servers = Fixture.servers(37)
            for i in servers.indices { servers[i].weight = 1 + i % 4 }
            let s = Fixture.snapshot(servers, algorithm)
            var rng = SplitMix64(seed: 11)
            for _ in 0..<2_000 {
                let h = rng.next()
                let all = Array(s.candidates(forKeyHash: h))
                XCTAssertEqual(all.count, 37, "\(algorithm)")
                XCTAssertEqual(Set(all).count, 37, "\(algorithm): candidates must be distinct")
                XCTAssertEqual(Array(s.candidates(forKeyHash: h, limit: 3)), Array(all.prefix(3)))
                XCTAssertEqual(Array(s.candidates(forKeyHash: h, limit: 0)), [])
                // pick skips ineligible candidates in order.
                XCTAssertEqual(s.pick(forKeyHash: h, isEligible: { $0 != all[0] && $0 != all[1] }), all[2])
            }
        }
    }

    /// Ring candidate k+1 is the key's owner once the servers of candidates 1...k are removed, with one probe
    /// and with several: a key that fails over from a drained or down server lands where it stays when that
    /// server is then removed (a drain followed by a removal moves each key once, not twice).
    func testRingFailoverCandidateIsTheOwnerOnceEarlierCandidatesAreRemoved() throws {
        for probes in [1, 3] {
            let config = RoutingConfig(algorithm: .ring, ringProbes: probes)
            let servers = Fixture.servers(50)
            let full = try RoutingSnapshot(servers: servers, config: config)
            var without: [Set<String>: RoutingSnapshot] = [:]
            func owner(_ h: UInt64, removing ids: Set<String>) throws -> String {
                if without[ids] == nil {
                    without[ids] = try RoutingSnapshot(servers: servers.filter { !ids.contains($0.id) }, config: config)
                }
                let s = without[ids]!
                return s.servers[s.pick(forKeyHash: h, isEligible: { _ in true })!].id
            }
            var rng = SplitMix64(seed: 5)
            for k in 0..<3_000 {
                let h = rng.next()
                let c = full.candidates(forKeyHash: h, limit: 3).map { full.servers[$0].id }
                XCTAssertEqual(try owner(h, removing: [c[0]]), c[1], "probes \(probes), key \(k)")
                if k < 200 {
                    XCTAssertEqual(try owner(h, removing: [c[0], c[1]]), c[2], "probes \(probes), key \(k)")
                }
            }
        }
    }

    func testSameServersInAnyOrderRouteIdentically() throws {
        for algorithm in everyAlgorithm {
            var servers = Fixture.servers(50)
            for i in servers.indices { servers[i].weight = 1 + i % 3 }
            var shuffled = servers
            var rng = SplitMix64(seed: 5)
            shuffled.shuffle(using: &rng)
            let a = Fixture.snapshot(servers, algorithm)
            let b = Fixture.snapshot(shuffled, algorithm)
            XCTAssertEqual(a.servers, b.servers)
            XCTAssertEqual(Fixture.owners(a, keys: 200_000), Fixture.owners(b, keys: 200_000), "\(algorithm)")
            XCTAssertEqual(a.movedFraction(to: b), 0, "\(algorithm)")
        }
    }

    func testSnapshotsBuiltSeparatelyRouteEveryKeyIdentically() throws {
        for algorithm in everyAlgorithm {
            let a = Fixture.snapshot(Fixture.servers(30), algorithm)
            let b = Fixture.snapshot(Fixture.servers(30), algorithm)
            var rng = SplitMix64(seed: 9)
            for _ in 0..<20_000 {
                let h = rng.next()
                XCTAssertEqual(
                    Array(a.candidates(forKeyHash: h, limit: 5)), Array(b.candidates(forKeyHash: h, limit: 5)))
            }
        }
    }

    /// Golden routing decisions: placement must never change silently between releases or platforms.
    func testRoutingDecisionsMatchGoldenValues() throws {
        var golden: [AlgorithmName: [Int]] = [:]
        for algorithm in everyAlgorithm {
            let s = Fixture.snapshot(Fixture.servers(10), algorithm)
            golden[algorithm] = (0..<12).map { k in
                var key = "user-\(k)"
                let h = key.withUTF8 { s.hashKey(UnsafeRawBufferPointer($0)) }
                return s.pick(forKeyHash: h, isEligible: { _ in true }) ?? -1
            }
        }
        print("golden routing:", golden.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key)=\($0.value)" })
        XCTAssertEqual(golden[.ring], GoldenRouting.ring)
        XCTAssertEqual(golden[.maglev], GoldenRouting.maglev)
        XCTAssertEqual(golden[.rendezvous], GoldenRouting.rendezvous)
    }

    func testRingWrapsAroundPastTheLastPoint() throws {
        // One probe, so the key's own position decides (extra probes would land elsewhere).
        let s = try RoutingSnapshot(servers: Fixture.servers(3), config: RoutingConfig(vnodes: 1, ringProbes: 1))
        let ring = try XCTUnwrap(s.table as? Ring)
        // A mixed hash above the last point belongs to the first point.
        let beyond = ring.positions.last! &+ 1
        if ring.positions.last! != .max {
            var cursor = ring.makeCursor(mixedHash: beyond)
            XCTAssertEqual(ring.next(&cursor), Int(ring.owners[0]))
        }
        var cursor = ring.makeCursor(mixedHash: .max)
        XCTAssertEqual(ring.next(&cursor), Int(ring.owners[ring.positions.last! == .max ? ring.owners.count - 1 : 0]))
    }

    func testInvalidConfigurationsThrowActionableErrors() {
        func error(_ servers: [ServerSpec], _ config: RoutingConfig) -> RoutingError? {
            do {
                _ = try RoutingSnapshot(servers: servers, config: config)
                return nil
            } catch {
                return error
            }
        }
        let two = Fixture.servers(2)
        XCTAssertEqual(error(two + [two[0]], RoutingConfig()), .duplicateID("s000"))
        XCTAssertEqual(
            error([ServerSpec(id: "a", host: "h", port: 1, weight: -1)], RoutingConfig()),
            .invalidWeight(id: "a", weight: -1))
        XCTAssertEqual(error(two, RoutingConfig(algorithm: .maglev, maglevTableSize: 65536)), .invalidTableSize(65536))
        XCTAssertEqual(
            error(Fixture.servers(7), RoutingConfig(algorithm: .maglev, maglevTableSize: 5)), .invalidTableSize(5))
        XCTAssertEqual(error(two, RoutingConfig(vnodes: 0)), .invalidVnodes(0))
        XCTAssertEqual(error(two, RoutingConfig(boundedLoad: 0.9)), .invalidBoundedLoadFactor(0.9))
        XCTAssertEqual(error(two, RoutingConfig(ringProbes: 0)), .invalidRingProbes(0))
        XCTAssertEqual(error(two, RoutingConfig(algorithm: .maglev, ringProbes: 9)), .invalidRingProbes(9))
        XCTAssertTrue(RoutingError.invalidRingProbes(0).description.contains("routing.ring_probes"))
        let heavy = [ServerSpec(id: "a", host: "h", port: 1, weight: 100_000)]
        XCTAssertEqual(error(heavy, RoutingConfig(vnodes: 160)), .tooManyPoints(total: 16_000_000, limit: 10_000_000))
        // Messages say what to change.
        XCTAssertTrue(RoutingError.invalidTableSize(65536).description.contains("65537"))
        XCTAssertTrue(RoutingError.tooManyPoints(total: 2, limit: 1).description.contains("vnodes"))
    }

    /// Weighted rendezvous ranks with a libm-free -ln(u). Contract: absolute error below 1e-9 everywhere, so
    /// ranks near the top (-ln u ~ 1/servers) are off by under 1e-6 relative: no visible bias in shares.
    func testRendezvousLogApproximationTracksLibm() {
        var rng = SplitMix64(seed: 12)
        RendezvousOrder.logTable.withUnsafeBufferPointer { table in
            var worstAbsolute = 0.0
            var worstRelative = 0.0
            let fixed = [0x1p-53, 0.5, 0.999_999, 0.707_106_781_186_547_6, 1 - 0x1p-53]
            for k in 0..<200_000 {
                let u = k < fixed.count ? fixed[k] : (Double(rng.next() >> 11) + 0.5) * 0x1p-53
                let exact = -Glibc.log(u)
                let error = abs(RendezvousOrder.negativeLog(u, table: table) - exact)
                worstAbsolute = max(worstAbsolute, error)
                if exact >= 1e-3 { worstRelative = max(worstRelative, error / exact) }
            }
            print("negativeLog worst absolute error \(worstAbsolute), relative (-ln u >= 1e-3) \(worstRelative)")
            XCTAssertLessThan(worstAbsolute, 1e-9)
            XCTAssertLessThan(worstRelative, 1e-6)
        }
    }

    func testIndexOfFindsServersByID() {
        let s = Fixture.snapshot(Fixture.servers(4).reversed(), .ring)
        XCTAssertEqual(s.index(of: "s002"), 2)
        XCTAssertNil(s.index(of: "nope"))
    }
}

/// Checked-in first picks for keys "user-0" ... "user-11" (xxh3) over servers s000...s009, weight 1, default
/// config (ring: 160 points, 3 probes). A change here changes routing for every deployed instance.
enum GoldenRouting {
    static let ring = [8, 6, 2, 2, 9, 6, 3, 4, 7, 6, 3, 9]
    static let maglev = [3, 9, 9, 9, 9, 1, 7, 7, 6, 1, 0, 2]
    static let rendezvous = [3, 1, 0, 1, 0, 5, 9, 2, 4, 2, 9, 0]
}

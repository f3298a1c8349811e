import XCTest

@testable import LBCore

/// Balance, disruption and monotonicity of every algorithm, measured over 1,000,000 pseudo-random key
/// digests (splitmix64) fed to candidates(forKeyHash:). Numbers are printed so runs can be compared.
///
/// Sampling floor: with K keys over N servers, max/mean of a perfectly fair assignment is already about
/// 1 + 2.5 * sqrt(N / K) (1.025 for 100 servers and 1M keys), so thresholds sit above that.
final class DistributionTests: XCTestCase {
    static let keyCount = 1_000_000

    /// First-candidate tallies are costly in debug builds (rendezvous scores every server per key), so
    /// the 100-server baselines are computed once and shared; tests run serially.
    nonisolated(unsafe) private static var baselines: [AlgorithmName: (RoutingSnapshot, [Int32])] = [:]

    private func baseline(_ algorithm: AlgorithmName) -> (RoutingSnapshot, [Int32]) {
        if let cached = Self.baselines[algorithm] { return cached }
        let s = Fixture.snapshot(Fixture.servers(100), algorithm)
        let result = (s, Fixture.owners(s, keys: Self.keyCount))
        Self.baselines[algorithm] = result
        return result
    }

    // MARK: balance

    private func checkEqualServerBalance(_ algorithm: AlgorithmName, max10: Double, max100: Double) {
        let ten = Fixture.snapshot(Fixture.servers(10), algorithm)
        let b10 = Fixture.balance(Fixture.loads(Fixture.owners(ten, keys: Self.keyCount), servers: 10))
        let (hundred, owners) = baseline(algorithm)
        let b100 = Fixture.balance(Fixture.loads(owners, servers: 100))
        let exact = hundred.table.exactShares().map { Fixture.balance($0.map { Int($0 * 1e12) }) }
        print(
            "[\(algorithm)] balance max/mean over 1M keys: 10 servers \(Fixture.format(b10)), "
                + "100 servers \(Fixture.format(b100)); exact keyspace max/mean at 100: "
                + "\(exact.map(Fixture.format) ?? "n/a (sampled algorithm)")")
        XCTAssertLessThanOrEqual(b10, max10)
        XCTAssertLessThanOrEqual(b100, max100)
    }

    func testRingBalanceAtTenAndHundredEqualServers() {
        // Three probes per key over 160 points per server leave each share with ~3.5% relative spread, so
        // exact max/mean over 100 servers is typically 1.08-1.12 (plus the 1M-key sampling floor).
        checkEqualServerBalance(.ring, max10: 1.10, max100: 1.17)
    }

    /// Probing more positions per key evens out the ring's shares: exact max/mean at 100 equal servers
    /// (160 points each) falls with every probe, and with the default meets the 1.15 target, where
    /// classic one-probe ketama sits around 1.2 (its shares are sums of exponential arc lengths).
    func testRingProbesEvenOutKeyspaceShares() throws {
        var exact: [Double] = []
        for probes in 1...4 {
            let s = try RoutingSnapshot(
                servers: Fixture.servers(100), config: RoutingConfig(algorithm: .ring, ringProbes: probes))
            let shares = s.keyspaceShares()
            XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-9)
            exact.append(shares.max()! * 100)
        }
        print("[ring] exact max/mean at 100 servers by probes 1...4: \(exact.map(Fixture.format))")
        for i in 1..<exact.count { XCTAssertLessThan(exact[i], exact[i - 1], "probes \(i + 1)") }
        XCTAssertLessThanOrEqual(exact[RoutingConfig.defaultRingProbes - 1], 1.15)
    }

    /// Classic ketama (one probe) keeps its exact arc-sweep moved fraction; checked against 1M keys.
    func testOneProbeRingMovedFractionIsExact() throws {
        let config = RoutingConfig(algorithm: .ring, ringProbes: 1)
        let before = try RoutingSnapshot(servers: Fixture.servers(20), config: config)
        var servers = Fixture.servers(20).filter { $0.id != "s007" }
        servers[3].weight = 2
        let after = try RoutingSnapshot(servers: servers, config: config)
        XCTAssertNotNil(before.table.exactMovedFraction(to: after.table))
        let a = Fixture.owners(before, keys: Self.keyCount)
        let b = Fixture.owners(after, keys: Self.keyCount)
        let map = ServerIndexMap(from: before.servers, to: after.servers)
        var moved = 0
        for k in 0..<Self.keyCount where map[Int(a[k])] != Int(b[k]) { moved += 1 }
        let measured = Double(moved) / Double(Self.keyCount)
        let sigma = (measured * (1 - measured) / Double(Self.keyCount)).squareRoot()
        XCTAssertEqual(before.movedFraction(to: after), measured, accuracy: 4 * sigma)
    }

    /// The multi-probe ring's moved fraction for a change to one server (added, removed, reweighted either way)
    /// is that server's share difference, exact; checked against 1M keys. Two servers changed at once sample.
    func testMultiProbeRingMovedFractionForOneServerIsExact() throws {
        let config = RoutingConfig(algorithm: .ring)
        XCTAssertGreaterThan(config.ringProbes, 1)
        let base = Fixture.servers(50)
        let before = try RoutingSnapshot(servers: base, config: config)
        let a = Fixture.owners(before, keys: Self.keyCount)
        var heavier = base
        heavier[5].weight = 4
        var lighter = base
        lighter[5].weight = 0
        var twoChanged = base
        twoChanged[5].weight = 2
        twoChanged[6].weight = 2
        let changes: [(String, [ServerSpec], Bool)] = [
            ("added", base + [ServerSpec(id: "zz-new", host: "h", port: 1)], true),
            ("removed", base.filter { $0.id != base[9].id }, true),
            ("heavier", heavier, true),
            ("weight 0", lighter, true),
            ("two changed", twoChanged, false),
        ]
        for (name, servers, exact) in changes {
            let after = try RoutingSnapshot(servers: servers, config: config)
            XCTAssertEqual(before.soleServerMovedFraction(to: after) != nil, exact, name)
            let b = Fixture.owners(after, keys: Self.keyCount)
            let map = ServerIndexMap(from: before.servers, to: after.servers)
            var moved = 0
            for k in 0..<Self.keyCount where map[Int(a[k])] != Int(b[k]) { moved += 1 }
            let measured = Double(moved) / Double(Self.keyCount)
            let sampled = exact ? Double.infinity : 200_000
            let p = max(measured, 1e-6)
            let sigma = (p * (1 - p) * (1 / Double(Self.keyCount) + 1 / sampled)).squareRoot()
            XCTAssertEqual(before.movedFraction(to: after), measured, accuracy: 4 * sigma, name)
            XCTAssertGreaterThan(measured, 0.005, name)
        }
    }

    func testMaglevBalanceAtTenAndHundredEqualServers() {
        checkEqualServerBalance(.maglev, max10: 1.02, max100: 1.06)
    }

    func testRendezvousBalanceAtTenAndHundredEqualServers() {
        checkEqualServerBalance(.rendezvous, max10: 1.02, max100: 1.06)
    }

    /// Weights 1...5 twice over: each server's share of keys is within 5% (relative) of its weight share.
    private func checkWeightedShares(_ algorithm: AlgorithmName, vnodes: Int = 160) {
        var servers = Fixture.servers(10)
        for i in servers.indices { servers[i].weight = 1 + i % 5 }
        let s = Fixture.snapshot(servers, algorithm, vnodes: vnodes)
        let loads = Fixture.loads(Fixture.owners(s, keys: Self.keyCount), servers: 10)
        let totalWeight = Double(servers.reduce(0) { $0 + $1.weight })
        var worst = 0.0
        for i in servers.indices {
            let expected = Double(servers[i].weight) / totalWeight
            let got = Double(loads[i]) / Double(Self.keyCount)
            worst = max(worst, abs(got - expected) / expected)
        }
        print("[\(algorithm)] weights 1...5 (vnodes \(vnodes)): worst relative share error \(Fixture.format(worst))")
        XCTAssertLessThanOrEqual(worst, 0.05)
    }

    func testRingLoadSharesFollowMixedWeights() {
        // Defaults (160 points per weight unit, 3 probes): the weight-1 servers' shares spread by ~3.5%.
        // Classic one-probe ketama would need about 2,000 points per unit for 5%.
        checkWeightedShares(.ring)
    }

    func testMaglevLoadSharesFollowMixedWeights() { checkWeightedShares(.maglev) }

    func testRendezvousLoadSharesFollowMixedWeights() { checkWeightedShares(.rendezvous) }

    // MARK: disruption and monotonicity

    /// Removes s042 from the 100-server baseline. Returns (moved / keys that were on s042, moved / (keys / 100)).
    private func checkRemovingOneOfHundred(_ algorithm: AlgorithmName, maxRatio: Double, monotone: Bool) {
        let (before, ownersBefore) = baseline(algorithm)
        let removedID = "s042"
        let after = Fixture.snapshot(Fixture.servers(100).filter { $0.id != removedID }, algorithm)
        let ownersAfter = Fixture.owners(after, keys: Self.keyCount)
        let map = ServerIndexMap(from: before.servers, to: after.servers)
        let removed = before.index(of: removedID)!
        var moved = 0
        var onRemoved = 0
        var movedFromOthers = 0
        for k in 0..<Self.keyCount {
            let was = Int(ownersBefore[k])
            if was == removed { onRemoved += 1 }
            if map[was] != Int(ownersAfter[k]) {
                moved += 1
                if was != removed { movedFromOthers += 1 }
            }
        }
        let ratio = Double(moved) / Double(onRemoved)
        let vsIdeal = Double(moved) / (Double(Self.keyCount) / 100)
        print(
            "[\(algorithm)] remove 1 of 100: moved \(moved) keys, \(onRemoved) were on the removed server; "
                + "moved/optimal \(Fixture.format(ratio)), moved/(keys/100) \(Fixture.format(vsIdeal)); "
                + "movedFraction() \(Fixture.format(before.movedFraction(to: after)))")
        if monotone {
            XCTAssertEqual(movedFromOthers, 0, "removing a server must move only its own keys")
            XCTAssertEqual(moved, onRemoved)
        }
        XCTAssertLessThanOrEqual(ratio, maxRatio)
    }

    func testRemovingRingServerMovesOnlyItsKeys() { checkRemovingOneOfHundred(.ring, maxRatio: 1.0, monotone: true) }

    func testRemovingRendezvousServerMovesOnlyItsKeys() {
        checkRemovingOneOfHundred(.rendezvous, maxRatio: 1.0, monotone: true)
    }

    func testRemovingMaglevServerMovesLittleMoreThanItsKeys() {
        checkRemovingOneOfHundred(.maglev, maxRatio: 1.6, monotone: false)
    }

    /// Adds "s100" to the 100-server baseline; optimal = keys the new server ends up with.
    private func checkAddingOneToHundred(_ algorithm: AlgorithmName, maxRatio: Double, monotone: Bool) {
        let (before, ownersBefore) = baseline(algorithm)
        let after = Fixture.snapshot(Fixture.servers(101), algorithm)
        let ownersAfter = Fixture.owners(after, keys: Self.keyCount)
        let map = ServerIndexMap(from: before.servers, to: after.servers)
        let added = after.index(of: "s100")!
        var moved = 0
        var onAdded = 0
        var movedElsewhere = 0
        for k in 0..<Self.keyCount {
            let now = Int(ownersAfter[k])
            if now == added { onAdded += 1 }
            if map[Int(ownersBefore[k])] != now {
                moved += 1
                if now != added { movedElsewhere += 1 }
            }
        }
        let ratio = Double(moved) / Double(onAdded)
        print(
            "[\(algorithm)] add 1 to 100: moved \(moved) keys, new server holds \(onAdded); "
                + "moved/optimal \(Fixture.format(ratio)), moved/(keys/101) "
                + "\(Fixture.format(Double(moved) / (Double(Self.keyCount) / 101)))")
        if monotone { XCTAssertEqual(movedElsewhere, 0, "adding a server must move keys only to it") }
        XCTAssertLessThanOrEqual(ratio, maxRatio)
    }

    func testAddingRingServerMovesKeysOnlyToIt() { checkAddingOneToHundred(.ring, maxRatio: 1.0, monotone: true) }

    func testAddingRendezvousServerMovesKeysOnlyToIt() {
        checkAddingOneToHundred(.rendezvous, maxRatio: 1.0, monotone: true)
    }

    func testAddingMaglevServerMovesLittleMoreThanItGets() {
        // Maglev is not monotone: the newcomer's claims shift other servers' later claims (NSDI 2016,
        // section 5.3 measures the same effect). With M = 65537 and 100 servers it measures ~1.6.
        checkAddingOneToHundred(.maglev, maxRatio: 1.7, monotone: false)
    }

    // MARK: introspection agrees with measurement

    /// movedFraction (exact for ring/maglev, sampled for rendezvous) matches the measured fraction of 1M
    /// keys within 4 standard errors. Uses a weight change plus a removal, so both kinds of move appear.
    func testMovedFractionAgreesWithMeasuredMoves() {
        for algorithm in AlgorithmName.allCases {
            let (before, ownersBefore) = baseline(algorithm)
            var servers = Fixture.servers(100).filter { $0.id != "s007" }
            servers[10].weight = 3
            let after = Fixture.snapshot(servers, algorithm)
            let ownersAfter = Fixture.owners(after, keys: Self.keyCount)
            let map = ServerIndexMap(from: before.servers, to: after.servers)
            var moved = 0
            for k in 0..<Self.keyCount where map[Int(ownersBefore[k])] != Int(ownersAfter[k]) { moved += 1 }
            let measured = Double(moved) / Double(Self.keyCount)
            let predicted = before.movedFraction(to: after)
            let sampledKeys = before.table.exactMovedFraction(to: after.table) == nil ? 200_000.0 : .infinity
            let p = max(measured, 1e-6)
            let sigma = (p * (1 - p)).squareRoot() * (1 / Double(Self.keyCount) + 1 / sampledKeys).squareRoot()
            print(
                "[\(algorithm)] movedFraction \(Fixture.format(predicted)) vs measured \(Fixture.format(measured)) "
                    + "(4 sigma = \(Fixture.format(4 * sigma)))")
            XCTAssertEqual(predicted, measured, accuracy: 4 * sigma, "\(algorithm)")
        }
    }

    /// keyspaceShares matches the measured per-server load fractions within 4 standard errors each.
    func testKeyspaceSharesAgreeWithMeasuredLoads() {
        for algorithm in AlgorithmName.allCases {
            let (s, owners) = baseline(algorithm)
            let shares = s.keyspaceShares()
            let loads = Fixture.loads(owners, servers: 100)
            XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-9)
            let sampledKeys = s.table.exactShares() == nil ? Double(RoutingSnapshot.sampleCount) : .infinity
            for i in 0..<100 {
                let measured = Double(loads[i]) / Double(Self.keyCount)
                let sigma =
                    (measured * (1 - measured)).squareRoot()
                    * (1 / Double(Self.keyCount) + 1 / sampledKeys).squareRoot()
                XCTAssertEqual(shares[i], measured, accuracy: 4 * sigma + 1e-9, "\(algorithm) server \(i)")
            }
        }
    }

    /// The radix order the exact multi-probe shares walk is the comparison order, equal widths by index.
    func testArcOrderMatchesASortByWidthThenIndex() {
        var rng = SplitMix64(seed: 42)
        for count in [0, 1, 2, 17, 5_000] {
            // Small widths repeat (ties), large ones use the high bits: every radix pass matters.
            let widths = (0..<count).map { i -> UInt64 in
                let r = rng.next()
                return i % 3 == 0 ? r % 7 : (i % 3 == 1 ? r >> 40 : r >> 1)
            }
            let expected = (0..<count).sorted { (widths[$0], $0) < (widths[$1], $1) }.map(UInt32.init)
            XCTAssertEqual(Ring.orderByWidth(widths), expected, "\(count) widths")
        }
    }
}

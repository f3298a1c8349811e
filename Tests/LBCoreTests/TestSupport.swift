import XCTest

@testable import LBCore

/// Shared fixtures: server lists, a deterministic key stream, and first-candidate tallies.
enum Fixture {
    /// `count` servers with ids "s000", "s001", ... and the given weight.
    static func servers(_ count: Int, weight: Int = 1) -> [ServerSpec] {
        (0..<count).map { i in
            let id = "s" + String(repeating: "0", count: max(0, 3 - String(i).count)) + String(i)
            return ServerSpec(id: id, host: "10.0.\(i / 250).\(i % 250 + 1)", port: 8080, weight: weight)
        }
    }

    static func snapshot(
        _ servers: [ServerSpec], _ algorithm: AlgorithmName, vnodes: Int = 160, boundedLoad: Double? = nil
    ) -> RoutingSnapshot {
        let config = RoutingConfig(algorithm: algorithm, vnodes: vnodes, boundedLoad: boundedLoad)
        do {
            return try RoutingSnapshot(servers: servers, config: config)
        } catch {
            fatalError("fixture snapshot failed: \(error)")
        }
    }

    /// First candidate per key for `keys` pre-generated 64-bit digests (splitmix64 from `seed`), as server
    /// ids' indices in `snapshot.servers`; -1 = no server. Digests go straight to candidates(forKeyHash:),
    /// which keeps 1M-key runs fast in debug builds.
    static func owners(_ snapshot: RoutingSnapshot, keys: Int, seed: UInt64 = 42) -> [Int32] {
        var rng = SplitMix64(seed: seed)
        var result = [Int32](repeating: -1, count: keys)
        for k in 0..<keys {
            var walk = snapshot.candidates(forKeyHash: rng.next(), limit: 1)
            if let i = walk.next() { result[k] = Int32(i) }
        }
        return result
    }

    static func loads(_ owners: [Int32], servers: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: servers)
        for o in owners where o >= 0 { counts[Int(o)] += 1 }
        return counts
    }

    /// max load / mean load.
    static func balance(_ loads: [Int]) -> Double {
        let total = loads.reduce(0, +)
        guard total > 0, let maxLoad = loads.max() else { return 0 }
        return Double(maxLoad) / (Double(total) / Double(loads.count))
    }

    static func format(_ x: Double) -> String {
        let scaled = (x * 10_000).rounded() / 10_000
        return "\(scaled)"
    }
}

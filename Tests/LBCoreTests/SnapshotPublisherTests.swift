/// A tiny thread-safe counter for the test (swift-atomics is already a dependency of LBCore).
import Atomics
import Dispatch
import XCTest

@testable import LBCore

/// Lock-free publication: readers hammer load() + lookups while a writer publishes new snapshots.
final class SnapshotPublisherTests: XCTestCase {
    func testLoadReturnsTheLatestPublished() throws {
        let a = Fixture.snapshot(Fixture.servers(3), .ring)
        let b = try RoutingSnapshot(servers: Fixture.servers(4), config: RoutingConfig(), generation: 1)
        let publisher = SnapshotPublisher(a)
        XCTAssertTrue(publisher.load() === a)
        publisher.publish(b)
        XCTAssertTrue(publisher.load() === b)
    }

    /// Each snapshot generation g has servers s000..s(g % 7 + 1): a lookup through the snapshot a reader
    /// loaded must be valid for exactly that snapshot (index in range, weight > 0, id consistent with g).
    func testReadersSeeOnlyWholeSnapshotsWhileWriterPublishes() throws {
        let algorithms = AlgorithmName.allCases
        @Sendable func build(_ g: UInt64) -> RoutingSnapshot {
            var servers = Fixture.servers(Int(g % 7) + 1)
            servers[0].weight = g % 3 == 0 ? 0 : 1  // sometimes drain the first, still routable otherwise
            if servers.count == 1 { servers[0].weight = 1 }
            let config = RoutingConfig(algorithm: algorithms[Int(g % 3)], vnodes: 40, maglevTableSize: 251)
            return try! RoutingSnapshot(servers: servers, config: config, generation: g)
        }
        let publisher = SnapshotPublisher(build(0))
        let readers = 3
        let lookupsPerReader = 100_000
        let failures = ManagedCounter()
        let done = DispatchGroup()
        for r in 0..<readers {
            DispatchQueue.global().async(group: done) {
                var rng = SplitMix64(seed: UInt64(r))
                for _ in 0..<lookupsPerReader {
                    let s = publisher.load()
                    guard let i = s.pick(forKeyHash: rng.next(), isEligible: { _ in true }) else {
                        failures.add()
                        continue
                    }
                    let expectedCount = Int(s.generation % 7) + 1
                    if s.servers.count != expectedCount || i >= s.servers.count || s.servers[i].weight == 0
                        || s.config.algorithm != algorithms[Int(s.generation % 3)]
                    {
                        failures.add()
                    }
                }
            }
        }
        let writer = DispatchQueue(label: "writer")
        writer.async(group: done) {
            for g in 1...2_000 { publisher.publish(build(UInt64(g))) }
        }
        done.wait()
        XCTAssertEqual(failures.value, 0)
        XCTAssertEqual(publisher.load().generation, 2_000)
    }
}

final class ManagedCounter: Sendable {
    private let count = ManagedAtomic<Int>(0)
    func add() { count.wrappingIncrement(ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

import Foundation
import LBCore
import LBTLS
import XCTest

@testable import LBServer

/// The counters a hot upgrade carries: what crosses (counters and histograms, by name) and what does not
/// (gauges, servers the successor lacks), through the control socket's own encoding.
final class CarriedCountersTests: XCTestCase {
    private let a = ServerSpec(id: "a", host: "10.0.0.1", port: 80, weight: 1)
    private let b = ServerSpec(id: "b", host: "10.0.0.2", port: 80, weight: 1)

    /// A collected snapshot with every kind of field set: counters, arrays by reason, histograms and gauges.
    private func busySnapshot() -> StatsSnapshot {
        var s = StatsSnapshot()
        s.workerCount = 2
        s.openConnections = 7
        s.coalescedSleeps = 3
        s.workers.requests = 1000
        s.workers.connectionsTotal = 40
        s.workers.inFlight = 5
        s.workers.bytesOut = 123_456
        s.workers.responses.count(200)
        s.workers.responses.count(503)
        s.workers.proxyErrors[ProxyErrorCause.badGateway.rawValue] = 9
        s.workers.tlsFailureReasons[TLSFailureReason.allCases.last!.rawValue] = 4
        s.workers.h2.open = 2
        s.workers.h2.streams = 11
        s.workers.h2.goaways[H2GoawayReason.drain.rawValue] = 6
        s.workers.requestLatency.record(nanos: 2_000_000)
        s.workers.requestLatency.record(nanos: 9_000_000)
        for (id, requests) in [("a", UInt64(600)), ("b", UInt64(400)), ("gone", UInt64(1))] {
            var backend = StatsSnapshot.Backend()
            backend.counters.requests = requests
            backend.counters.connectErrors = 2
            backend.counters.peakConnections = 30
            backend.counters.queued = 12
            backend.counters.queueTimeouts = 5
            backend.counters.queueFull = 4
            backend.counters.peakQueue = 9
            backend.counters.limitsLearnt = 3
            backend.counters.responseLatency.record(nanos: 1_000_000)
            backend.activeConnections = 8
            backend.inFlight = 3
            s.backends[id] = backend
        }
        return s
    }

    /// `counters` through `ControlMessage`'s encoding and back, as the successor reads them.
    private func overTheWire(_ counters: CarriedCounters) throws -> CarriedCounters {
        let line = ControlMessage.encode(["counters": counters.json()])
        let object = try ControlMessage.decode(Array(line.dropLast()))
        return try CarriedCounters(json: try XCTUnwrap(object["counters"] as? [String: Any]))
    }

    func testCountersAndHistogramsCrossAndGaugesStayBehind() throws {
        let back = try overTheWire(CarriedCounters(busySnapshot(), servers: [a, b]))
        let w = back.snapshot.workers
        XCTAssertEqual(w.requests, 1000)
        XCTAssertEqual(w.connectionsTotal, 40)
        XCTAssertEqual(w.bytesOut, 123_456)
        XCTAssertEqual(w.responses.array, [0, 1, 0, 0, 1])
        XCTAssertEqual(w.proxyErrors[ProxyErrorCause.badGateway.rawValue], 9)
        XCTAssertEqual(w.tlsFailureReasons[TLSFailureReason.allCases.last!.rawValue], 4)
        XCTAssertEqual(w.h2.streams, 11)
        XCTAssertEqual(w.h2.goaways[H2GoawayReason.drain.rawValue], 6)
        XCTAssertEqual(back.snapshot.coalescedSleeps, 3)
        XCTAssertEqual(w.requestLatency.count, 2)
        XCTAssertEqual(w.requestLatency.seconds(atPercentile: 100), 0.009, accuracy: 0.0001, "buckets kept")
        XCTAssertEqual(back.snapshot.backends["a"]?.counters.requests, 600)
        XCTAssertEqual(back.snapshot.backends["b"]?.counters.connectErrors, 2)
        XCTAssertEqual(back.snapshot.backends["a"]?.counters.responseLatency.count, 1)
        let queueAndLimits = back.snapshot.backends["b"].map {
            [$0.counters.queued, $0.counters.queueTimeouts, $0.counters.queueFull, $0.counters.limitsLearnt]
        }
        XCTAssertEqual(queueAndLimits, [12, 5, 4, 3], "the queue's counters and the learnt limits cross")
        XCTAssertNil(back.snapshot.backends["gone"], "a server the process no longer routes to is not carried")
        // Gauges describe the process that has them.
        XCTAssertEqual(back.snapshot.workerCount, 0)
        XCTAssertEqual(back.snapshot.openConnections, 0)
        XCTAssertEqual(w.inFlight, 0)
        XCTAssertEqual(w.h2.open, 0)
        XCTAssertEqual(back.snapshot.backends["a"]?.activeConnections, 0)
        XCTAssertEqual(back.snapshot.backends["a"]?.inFlight, 0)
        XCTAssertEqual(back.snapshot.backends["a"]?.counters.peakConnections, 0)
        XCTAssertEqual(back.snapshot.backends["a"]?.counters.peakQueue, 0)
    }

    func testTheSuccessorAddsTheCarriedCountersToItsOwn() throws {
        var own = StatsSnapshot()
        own.workers.requests = 5
        own.workerCount = 1
        own.workers.inFlight = 1
        own.merge(try overTheWire(CarriedCounters(busySnapshot(), servers: [a])).snapshot)
        XCTAssertEqual(own.workers.requests, 1005)
        XCTAssertEqual(own.workerCount, 1, "the carried counters add no worker")
        XCTAssertEqual(own.workers.inFlight, 1, "nor requests in flight")
    }

    func testServersMissingOrMovedInTheSuccessorAreDropped() throws {
        var carried = try overTheWire(CarriedCounters(busySnapshot(), servers: [a, b]))
        let moved = ServerSpec(id: "b", host: "10.0.0.9", port: 80, weight: 1)
        let c = ServerSpec(id: "c", host: "10.0.0.3", port: 80, weight: 1)
        let state = try ProxyServer.buildState(
            config: LBConfig(servers: [a, moved, c]), previous: nil, workers: 1, generation: 1)
        carried.keepServers(of: state)
        XCTAssertEqual(carried.snapshot.backends["a"]?.counters.requests, 600)
        XCTAssertNil(carried.snapshot.backends["b"], "another address: another server, counted from zero")
        XCTAssertNil(carried.snapshot.backends["c"])
        XCTAssertEqual(carried.snapshot.workers.requests, 1000, "process totals are kept whatever the servers")
        carried.dropServer("a")
        XCTAssertNil(carried.snapshot.backends["a"])
    }

    func testUnknownNamesAreDroppedMissingOnesCountFromZeroAndOtherFormatsRefused() throws {
        var object = CarriedCounters(busySnapshot(), servers: [a]).json()
        var process = try XCTUnwrap(object["process"] as? [String: UInt64])
        process["h2_goaways_sent.some_future_reason"] = 77
        process["requests"] = nil
        object["process"] = process
        let back = try CarriedCounters(json: object)
        XCTAssertEqual(back.snapshot.workers.requests, 0)
        XCTAssertEqual(back.snapshot.workers.connectionsTotal, 40)
        XCTAssertEqual(back.snapshot.workers.h2.goaways.reduce(0, +), 6)
        object["format"] = 2
        XCTAssertThrowsError(try CarriedCounters(json: object)) { XCTAssertTrue("\($0)".contains("format 2")) }
        XCTAssertThrowsError(try CarriedCounters(json: ["format": 1]))
    }

    func testOverItsBudgetTheHistogramsAndThenTheServersAreLeftOut() throws {
        let carried = CarriedCounters(busySnapshot(), servers: [a, b])
        let full = carried.json()
        XCTAssertNotNil(full["request_latency"])
        func size(_ o: [String: Any]) throws -> Int { try JSONSerialization.data(withJSONObject: o).count }
        let noHistograms = carried.json(budget: try size(full) - 1)
        XCTAssertNil(noHistograms["request_latency"])
        XCTAssertEqual((noHistograms["servers"] as? [Any])?.count, 2)
        let bare = carried.json(budget: try size(noHistograms) - 1)
        XCTAssertNil(bare["servers"])
        XCTAssertEqual(try CarriedCounters(json: bare).snapshot.workers.requests, 1000)
    }

    func testTheRequestRateIgnoresTheJumpOfANewBase() {
        var rate = RequestRate(slots: 10)
        rate.record(at: 0, totals: .init(requests: 100, servers: ["a": (10, 0)]))
        // The base (carried counters) grows by 5000 between the sample and the reading; the process's own
        // traffic is 20 requests in 2 s.
        rate.rebase(from: .init(requests: 0), to: .init(requests: 5000, servers: ["a": (3000, 7)]))
        let r = rate.rate(now: 2_000, current: .init(requests: 5120, servers: ["a": (3030, 7)]))
        XCTAssertEqual(r.requests, 10, accuracy: 1e-9)
        XCTAssertEqual(r.servers["a"]?.requests ?? -1, 10, accuracy: 1e-9)
        XCTAssertEqual(r.servers["a"]?.errors ?? -1, 0, accuracy: 1e-9)
    }

    func testReadyAndFinalCountersRequestsParse() throws {
        XCTAssertEqual(try ControlRequest(["request": "ready"]), .ready(countersFormat: nil), "an older successor")
        XCTAssertEqual(try ControlRequest(["request": "ready", "counters": 1]), .ready(countersFormat: 1))
        let counters = CarriedCounters(busySnapshot(), servers: [a]).json()
        XCTAssertEqual(
            try ControlRequest(["request": "final_counters", "counters": counters]),
            .finalCounters(ControlPayload(counters)))
        XCTAssertThrowsError(try ControlRequest(["request": "final_counters"]))
    }
}

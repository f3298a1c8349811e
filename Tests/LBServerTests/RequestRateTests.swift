import XCTest

@testable import LBServer

/// The 10 s request rate: a ring of totals sampled once a second, read against a fresh total (fake clock in ms).
final class RequestRateTests: XCTestCase {
    private func totals(_ requests: UInt64, server: (UInt64, UInt64)? = nil) -> RequestRate.Totals {
        RequestRate.Totals(requests: requests, servers: server.map { ["s": $0] } ?? [:])
    }

    func testNoSampleYetMeansZero() {
        let rate = RequestRate()
        XCTAssertEqual(rate.rate(now: 5_000, current: totals(100)).requests, 0)
    }

    func testRateIsOverTheTimeSinceTheOldestSampleWhileTheRingFills() {
        var rate = RequestRate(slots: 10)
        rate.record(at: 1_000, totals: totals(0))
        rate.record(at: 2_000, totals: totals(50))
        let r = rate.rate(now: 3_000, current: totals(200))
        XCTAssertEqual(r.requests, 100, accuracy: 1e-9)  // 200 requests in 2 s
        XCTAssertEqual(r.window, 2, accuracy: 1e-9)
    }

    func testWindowSlidesToTheLastTenSamples() {
        var rate = RequestRate(slots: 10)
        // 10 req/s for 20 s, then nothing: the window forgets the busy start.
        for second in 0..<20 { rate.record(at: UInt64(second) * 1000, totals: totals(UInt64(second) * 10)) }
        XCTAssertEqual(rate.rate(now: 20_000, current: totals(200)).requests, 10, accuracy: 1e-9)
        for second in 20..<30 { rate.record(at: UInt64(second) * 1000, totals: totals(200)) }
        let idle = rate.rate(now: 30_000, current: totals(200))
        XCTAssertEqual(idle.requests, 0)
        XCTAssertEqual(idle.window, 10, accuracy: 1e-9)
    }

    func testPerServerRatesAndACounterThatWentDownIsZero() {
        var rate = RequestRate(slots: 10)
        rate.record(at: 0, totals: totals(0, server: (100, 10)))
        let r = rate.rate(now: 2_000, current: totals(0, server: (140, 4)))
        XCTAssertEqual(r.servers["s"]?.requests ?? -1, 20, accuracy: 1e-9)
        XCTAssertEqual(r.servers["s"]?.errors, 0, "a server re-added under the same id starts over; never negative")
    }

    func testWorkersTotalsAddUpPerServer() {
        var sum = RequestRate.Totals(requests: 5, servers: ["a": (3, 1)])
        sum.add(RequestRate.Totals(requests: 7, servers: ["a": (4, 0), "b": (2, 2)]))
        XCTAssertEqual(sum.requests, 12)
        XCTAssertEqual(sum.servers["a"]?.requests, 7)
        XCTAssertEqual(sum.servers["a"]?.errors, 1)
        XCTAssertEqual(sum.servers["b"]?.requests, 2)
        XCTAssertEqual(sum.servers["b"]?.errors, 2)
        XCTAssertEqual(sum.servers.count, 2)
    }
}

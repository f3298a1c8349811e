import LBCore
import LBDNS
import XCTest

@testable import LBServer

/// The DNS source's decisions: TTL clamping, keeping the last good set through failures, the NXDOMAIN hold, and
/// logging once per change of state.
final class DNSRefreshTests: XCTestCase {
    private let settings = DNSRefresh.Settings(minTTLMs: 1_000, maxTTLMs: 60_000, nxdomainHoldMs: 10_000)
    private let a = [ServerSpec(host: "10.0.0.1", port: 80)]
    private let ab = [ServerSpec(host: "10.0.0.1", port: 80), ServerSpec(host: "10.0.0.2", port: 80)]

    func testTheNextQueryComesAfterTheTTLClampedToTheFloorAndCeiling() {
        XCTAssertEqual(DNSRefresh.delay(ttlSeconds: 0, settings), 1_000)
        XCTAssertEqual(DNSRefresh.delay(ttlSeconds: 30, settings), 30_000)
        XCTAssertEqual(DNSRefresh.delay(ttlSeconds: 3600, settings), 60_000)
        XCTAssertEqual(DNSRefresh.delay(ttlSeconds: .max, settings), 60_000)
    }

    func testFailuresBackOffFromTheFloorDoublingUpToTheCeiling() {
        XCTAssertEqual(
            (1...8).map { DNSRefresh.backoff(failures: $0, settings) },
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000])
        XCTAssertEqual(DNSRefresh.backoff(failures: 500, settings), 60_000)
    }

    func testAnAnswerPublishesOnlyWhenTheSetChanges() {
        var r = DNSRefresh(settings: settings)
        XCTAssertEqual(
            r.resolved(.answer(a, ttlSeconds: 5), now: 0),
            .init(publish: a, nextQueryInMs: 5_000, log: .answered(after: nil)))
        XCTAssertEqual(
            r.resolved(.answer(a, ttlSeconds: 5), now: 5_000), .init(publish: nil, nextQueryInMs: 5_000, log: nil))
        XCTAssertEqual(
            r.resolved(.answer(ab, ttlSeconds: 2), now: 10_000), .init(publish: ab, nextQueryInMs: 2_000, log: nil))
    }

    func testFailuresKeepTheLastGoodSetAndLogOncePerKind() {
        var r = DNSRefresh(settings: settings)
        _ = r.resolved(.answer(ab, ttlSeconds: 5), now: 0)
        XCTAssertEqual(
            r.resolved(.failure(.servfail, "x"), now: 5_000),
            .init(publish: nil, nextQueryInMs: 1_000, log: .failing(.servfail, "x")))
        XCTAssertEqual(
            r.resolved(.failure(.servfail, "x"), now: 6_000), .init(publish: nil, nextQueryInMs: 2_000, log: nil))
        XCTAssertEqual(r.resolved(.failure(.timeout, "t"), now: 8_000).log, .failing(.timeout, "t"))
        XCTAssertEqual(
            r.resolved(.answer([], ttlSeconds: 5), now: 9_000).log,
            .failing(.noData, "the answer has records but no usable address"))
        XCTAssertEqual(r.current, ab)
        XCTAssertEqual(
            r.resolved(.answer(ab, ttlSeconds: 5), now: 20_000),
            .init(publish: nil, nextQueryInMs: 5_000, log: .answered(after: .noData)))
        XCTAssertEqual(r.consecutiveFailures, 0)
    }

    func testNXDOMAINKeepsTheSetUntilTheHoldThenEmptiesIt() {
        var r = DNSRefresh(settings: settings)
        _ = r.resolved(.answer(ab, ttlSeconds: 5), now: 0)
        XCTAssertEqual(
            r.resolved(.failure(.nxdomain, "n"), now: 5_000),
            .init(publish: nil, nextQueryInMs: 1_000, log: .nxdomainHeld(untilMs: 15_000)))
        _ = r.resolved(.failure(.nxdomain, "n"), now: 6_000)
        _ = r.resolved(.failure(.nxdomain, "n"), now: 8_000)
        // The back-off (8 s) would overshoot the hold's end: the query comes when the hold ends.
        XCTAssertEqual(
            r.resolved(.failure(.nxdomain, "n"), now: 12_000), .init(publish: nil, nextQueryInMs: 3_000, log: nil))
        XCTAssertEqual(r.resolved(.failure(.nxdomain, "n"), now: 15_000).publish, [])
        XCTAssertEqual(r.current, [])
        XCTAssertEqual(r.resolved(.failure(.nxdomain, "n"), now: 30_000).publish, nil, "emptied once")
        XCTAssertEqual(r.resolved(.answer(a, ttlSeconds: 5), now: 31_000).publish, a)
    }

    func testAFailureBetweenNXDOMAINsRestartsTheHold() {
        var r = DNSRefresh(settings: settings)
        _ = r.resolved(.answer(ab, ttlSeconds: 5), now: 0)
        _ = r.resolved(.failure(.nxdomain, "n"), now: 1_000)
        _ = r.resolved(.failure(.servfail, "s"), now: 2_000)
        _ = r.resolved(.failure(.nxdomain, "n"), now: 9_000)
        XCTAssertNil(r.resolved(.failure(.nxdomain, "n"), now: 12_000).publish, "the hold runs from 9 s, not 1 s")
        XCTAssertEqual(r.resolved(.failure(.nxdomain, "n"), now: 19_000).publish, [])
    }
}

import XCTest

@testable import LBServer

/// The per-connection flood counters: each kind counts in one-second windows, independently of the others.
final class H2FloodGuardTests: XCTestCase {
    func testAKindIsOverItsLimitOnlyPastItWithinOneWindow() {
        var guardian = H2FloodGuard(limits: .init(perWindow: [3, 3, 2, 2, 3]))
        XCTAssertFalse(guardian.count(.reset, now: 1000))
        XCTAssertFalse(guardian.count(.reset, now: 1100))
        XCTAssertFalse(guardian.count(.reset, now: 1200))
        XCTAssertTrue(guardian.count(.reset, now: 1300), "the fourth reset in one second")
    }

    func testANewWindowStartsAfterOneSecond() {
        var guardian = H2FloodGuard(limits: .init(perWindow: [1, 1, 1, 1, 1]))
        XCTAssertFalse(guardian.count(.ping, now: 5000))
        XCTAssertFalse(guardian.count(.ping, now: 6000), "a second later the count starts again")
        XCTAssertTrue(guardian.count(.ping, now: 6999))
    }

    func testKindsCountSeparately() {
        var guardian = H2FloodGuard(limits: .init(perWindow: [1, 1, 1, 1, 1]))
        XCTAssertFalse(guardian.count(.settings, now: 0))
        XCTAssertFalse(guardian.count(.emptyFrame, now: 0))
        XCTAssertFalse(guardian.count(.refusedStream, now: 0))
        XCTAssertTrue(guardian.count(.settings, now: 10))
        XCTAssertEqual(H2FloodGuard.Kind.reset.goawayReason, .resetFlood)
    }
}

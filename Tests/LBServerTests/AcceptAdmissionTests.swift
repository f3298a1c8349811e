import XCTest

@testable import LBServer

/// The accept caps (TLS handshakes, plain accepts): a share per loop turn, and a token bucket per second.
final class AcceptAdmissionTests: XCTestCase {
    func testThePerTurnShareIsTakenThenTheNextTurnAdmitsAgain() {
        var a = AcceptAdmission(perTurn: 2, perSecond: nil, now: 0)
        XCTAssertEqual([a.admit(now: 0), a.admit(now: 0), a.admit(now: 0)], [.admit, .admit, .nextTurn])
        a.newTurn()
        XCTAssertEqual(a.admit(now: 0), .admit)
    }

    func testTheRateAllowsOneSecondsBurstThenOneTokenAtATime() {
        var a = AcceptAdmission(perTurn: nil, perSecond: 10, now: 1_000)
        for _ in 0..<10 { XCTAssertEqual(a.admit(now: 1_000), .admit) }
        XCTAssertEqual(a.admit(now: 1_000), .wait(ms: 100), "one token every 100 ms at 10/s")
        XCTAssertEqual(a.admit(now: 1_050), .wait(ms: 50))
        XCTAssertEqual(a.admit(now: 1_100), .admit)
        XCTAssertEqual(a.admit(now: 1_100), .wait(ms: 100))
        // Idle for a minute: the bucket holds one second's worth, not a minute's.
        for _ in 0..<10 { XCTAssertEqual(a.admit(now: 61_100), .admit) }
        XCTAssertEqual(a.admit(now: 61_100), .wait(ms: 100))
    }

    func testBothCapsApplyAndNoCapAdmitsEverything() {
        var a = AcceptAdmission(perTurn: 3, perSecond: 1_000, now: 0)
        XCTAssertEqual((0..<4).map { _ in a.admit(now: 0) }, [.admit, .admit, .admit, .nextTurn])
        var free = AcceptAdmission(perTurn: nil, perSecond: nil, now: 0)
        XCTAssertFalse(free.isLimited)
        XCTAssertTrue((0..<10_000).allSatisfy { _ in free.admit(now: 0) == .admit })
    }

    /// A growing share (plain accepts): doubled after each turn that used it whole, back to the base after one
    /// that did not; a fixed one (TLS) never grows.
    func testAGrowingShareDoublesWhileTurnsFillItAndFallsBackWhenOneDoesNot() {
        var a = AcceptAdmission(perTurn: 2, perSecond: nil, grows: true, now: 0)
        func takeAll() -> Int {
            var n = 0
            while a.admit(now: 0) == .admit { n += 1 }
            return n
        }
        XCTAssertEqual(takeAll(), 2)
        a.newTurn()
        XCTAssertEqual(takeAll(), 4)
        a.newTurn()
        XCTAssertEqual(takeAll(), 8)
        a.newTurn()
        XCTAssertEqual(a.admit(now: 0), .admit)  // a quiet turn: one connection
        a.newTurn()
        XCTAssertEqual(takeAll(), 2, "back to the base share")
        var fixed = AcceptAdmission(perTurn: 2, perSecond: nil, now: 0)
        for _ in 0..<3 {
            XCTAssertEqual([fixed.admit(now: 0), fixed.admit(now: 0), fixed.admit(now: 0)], [.admit, .admit, .nextTurn])
            fixed.newTurn()
        }
    }
}

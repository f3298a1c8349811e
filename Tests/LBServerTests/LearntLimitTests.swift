import XCTest

@testable import LBServer

/// `WorkerBackend.backendShed` and `relaxLearntLimit`: when a limit is learnt, how it goes down at each shed,
/// how it comes back up once the backend stops shedding, and when it is forgotten.
final class LearntLimitTests: XCTestCase {
    private final class Waiter: QueueWaiter {
        var queueTicket: UInt64 = 0
        func queueGranted() {}
        func queueTimedOut() {}
    }

    private func slot(open: Int) -> WorkerBackend {
        let s = WorkerBackend()
        for _ in 0..<open { s.connectionOpened() }
        return s
    }

    private let hold = WorkerBackend.learntLimitHoldMs

    func testFewConnectionsTeachNothing() {
        let s = slot(open: WorkerBackend.learnMinimumConnections - 1)
        XCTAssertFalse(s.backendShed(now: 1_000))
        XCTAssertEqual(s.learntLimit, 0)
        XCTAssertEqual(s.stats.limitsLearnt, 0)
    }

    func testAShedHoldsRequestsBelowWhatIsOpenAndEachLaterWindowLowersItBySixteenth() {
        let s = slot(open: 200)
        XCTAssertTrue(s.backendShed(now: 1_000))
        XCTAssertEqual(s.learntLimit, 199, "below the connections open when the backend shed one")
        // A burst of closes within the window is one signal (a restart closes every connection at once).
        for _ in 0..<32 {
            s.connectionGone()
            XCTAssertFalse(s.backendShed(now: 1_000 + WorkerBackend.shedWindowMs - 1))
        }
        XCTAssertEqual(s.learntLimit, 199)
        for _ in 0..<32 { s.connectionOpened() }
        // Shedding goes on: each window lowers it by a sixteenth ...
        XCTAssertTrue(s.backendShed(now: 1_000 + WorkerBackend.shedWindowMs))
        XCTAssertEqual(s.learntLimit, 199 - 199 / 16)
        // ... or to below what is open, when that is lower; never up.
        for _ in 0..<100 { s.connectionGone() }
        XCTAssertTrue(s.backendShed(now: 1_000 + 2 * WorkerBackend.shedWindowMs))
        XCTAssertEqual(s.learntLimit, 99)
        for _ in 0..<200 { s.connectionOpened() }
        XCTAssertTrue(s.backendShed(now: 1_000 + 3 * WorkerBackend.shedWindowMs))
        XCTAssertEqual(s.learntLimit, 99 - 99 / 16)
        XCTAssertEqual(s.stats.limitsLearnt, 4)
        // Never below what a shed needs to be seen at all.
        let low = slot(open: WorkerBackend.learnMinimumConnections)
        XCTAssertTrue(low.backendShed(now: 1_000))
        XCTAssertEqual(low.learntLimit, WorkerBackend.learnMinimumConnections - 1)
        XCTAssertFalse(low.backendShed(now: 2_000), "already at the floor")
        XCTAssertEqual(low.learntLimit, WorkerBackend.learnMinimumConnections - 1)
    }

    func testTheLimitRisesByAnEighthPerQuietIntervalWhileRequestsWait() {
        let s = slot(open: 200)
        XCTAssertTrue(s.backendShed(now: 1_000))
        let w = Waiter()
        s.enqueue(w, ticket: 1, now: 1_000)
        XCTAssertFalse(s.relaxLearntLimit(now: 1_000 + hold - 1), "held for a while after the shed")
        XCTAssertEqual(s.learntLimit, 199)
        XCTAssertTrue(s.relaxLearntLimit(now: 1_000 + hold))
        XCTAssertEqual(s.learntLimit, 199 + 199 / 8)
        XCTAssertFalse(s.relaxLearntLimit(now: 1_000 + hold + 10), "one raise per interval")
        XCTAssertTrue(s.relaxLearntLimit(now: 1_000 + 2 * hold))
        XCTAssertEqual(s.learntLimit, 223 + 223 / 8)
        // A shed in between holds it again, and lowers it to what is open.
        XCTAssertTrue(s.backendShed(now: 1_000 + 2 * hold + 5))
        XCTAssertEqual(s.learntLimit, 199)
        XCTAssertFalse(s.relaxLearntLimit(now: 1_000 + 3 * hold))
        XCTAssertEqual(s.learntLimit, 199)
    }

    func testTheLimitIsForgottenOnceDemandFellAndNobodyWaits() {
        let s = slot(open: 200)
        XCTAssertTrue(s.backendShed(now: 1_000))
        // Nothing in flight, nobody queued: demand is far below the limit.
        XCTAssertFalse(s.relaxLearntLimit(now: 1_000 + hold))
        XCTAssertEqual(s.learntLimit, 0)
    }
}

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

    func testAShedHoldsRequestsBelowWhatIsOpenAndEachLaterWindowLowersItByASixteenth() {
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
        // Shedding goes on: each later window lowers it by a sixteenth, however many connections closed (a
        // reload's closes spread over a few windows cost a few sixteenths, not the whole limit).
        XCTAssertTrue(s.backendShed(now: 1_000 + WorkerBackend.shedWindowMs))
        XCTAssertEqual(s.learntLimit, 199 - 199 / 16)
        for _ in 0..<100 { s.connectionGone() }
        XCTAssertTrue(s.backendShed(now: 1_000 + 2 * WorkerBackend.shedWindowMs))
        XCTAssertEqual(s.learntLimit, 187 - 187 / 16)
        XCTAssertEqual(s.stats.limitsLearnt, 3)
        // A refused connect says the server is restarting or down, not full: the limit is forgotten.
        s.forgetLearntLimit()
        XCTAssertEqual(s.learntLimit, 0)
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
        // A shed in between lowers it a sixteenth and holds it again.
        XCTAssertTrue(s.backendShed(now: 1_000 + 2 * hold + 5))
        let raised = 223 + 223 / 8
        XCTAssertEqual(s.learntLimit, raised - raised / 16)
        XCTAssertFalse(s.relaxLearntLimit(now: 1_000 + 3 * hold))
        XCTAssertEqual(s.learntLimit, raised - raised / 16)
    }

    func testTheLimitIsForgottenOnceDemandFellAndNobodyWaits() {
        let s = slot(open: 200)
        XCTAssertTrue(s.backendShed(now: 1_000))
        // Nothing in flight, nobody queued: demand is far below the limit.
        XCTAssertFalse(s.relaxLearntLimit(now: 1_000 + hold))
        XCTAssertEqual(s.learntLimit, 0)
    }
}

import XCTest

@testable import LBServer

/// The idle pool's purge decision (`PoolDemand`): keep what recent demand needed, close half the surplus per
/// interval once demand falls, never close a connection in use.
final class PoolDemandTests: XCTestCase {
    func testNoSurplusClosesNothing() {
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 0, inUse: 0, need: 0), 0)
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 10, inUse: 0, need: 10), 0)
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 10, inUse: 5, need: 15), 0)
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 10, inUse: 5, need: 100), 0, "need above what is open")
    }

    func testHalfTheSurplusRoundedUpIsClosed() {
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 100, inUse: 0, need: 0), 50)
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 100, inUse: 0, need: 60), 20)
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 100, inUse: 0, need: 99), 1, "one over the need: rounded up")
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 1, inUse: 0, need: 0), 1, "a last idle one goes too")
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 7, inUse: 0, need: 2), 3)
    }

    func testConnectionsInUseCountTowardsTheNeedButAreNeverClosed() {
        // 40 busy + 60 idle against a need of 50: surplus 50, close 25 idle ones.
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 60, inUse: 40, need: 50), 25)
        // More busy than the need: the surplus is larger than the idle pool, which is all that can go.
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 4, inUse: 100, need: 10), 4)
        XCTAssertEqual(PoolDemand.surplusToClose(idle: 0, inUse: 100, need: 10), 0)
    }

    func testAPoolThatFollowsSteadyDemandIsKeptWhole() {
        var demand = PoolDemand()
        for _ in 0..<10 {
            // 64 in use at the busiest moment of every interval; between bursts they rest in the pool.
            demand.connectionsInUse(64)
            XCTAssertEqual(demand.purge(idle: 64, inUse: 0), 0)
        }
        XCTAssertEqual(demand.estimate, 64)
    }

    func testTheBurstIsRememberedForOneQuietIntervalThenTheSurplusHalves() {
        var demand = PoolDemand()
        demand.connectionsInUse(1000)
        var idle = 1000
        // The interval with the burst, and the first quiet one: the estimate still holds the peak.
        XCTAssertEqual(demand.purge(idle: idle, inUse: 0), 0)
        XCTAssertEqual(demand.purge(idle: idle, inUse: 0), 0)
        XCTAssertEqual(demand.estimate, 500)
        var closedPerInterval: [Int] = []
        while idle > 0 {
            let close = demand.purge(idle: idle, inUse: 0)
            XCTAssertGreaterThan(close, 0, "every quiet interval closes some while any are idle")
            XCTAssertLessThanOrEqual(close, (idle + 1) / 2, "at most half the pool per interval")
            closedPerInterval.append(close)
            idle -= close
        }
        XCTAssertEqual(closedPerInterval.first, 250, "need 500: half of the 500 beyond it")
        XCTAssertLessThanOrEqual(closedPerInterval.count, 14, "gone within a few intervals, not one at a time")
    }

    func testFallingToLowerDemandSettlesOnTheNewPeak() {
        var demand = PoolDemand()
        demand.connectionsInUse(800)
        var idle = 800
        idle -= demand.purge(idle: idle, inUse: 0)
        for _ in 0..<30 {
            // 100 busy at each interval's peak from now on (the same 100 rotate through the pool).
            demand.connectionsInUse(100)
            idle -= demand.purge(idle: idle, inUse: 0)
        }
        XCTAssertEqual(demand.estimate, 100)
        XCTAssertEqual(idle, 100, "the pool shrank to what demand uses, and no further")
    }

    func testARisingPeakRaisesTheEstimateAtOnce() {
        var demand = PoolDemand(windowPeak: 0, estimate: 10)
        demand.connectionsInUse(30)
        demand.connectionsInUse(20)
        XCTAssertEqual(demand.windowPeak, 30, "the peak, not the last value")
        XCTAssertEqual(demand.purge(idle: 30, inUse: 0), 0)
        XCTAssertEqual(demand.estimate, 30)
    }

    func testEachIntervalStartsFromTheConnectionsInUseAtItsStart() {
        var demand = PoolDemand()
        demand.connectionsInUse(50)
        _ = demand.purge(idle: 10, inUse: 40)
        XCTAssertEqual(demand.windowPeak, 40, "still busy across the purge: the new interval's peak starts there")
        XCTAssertEqual(demand.need, 50)
    }
}

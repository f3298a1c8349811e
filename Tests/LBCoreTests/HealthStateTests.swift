import XCTest

@testable import LBCore

/// The rise/fall hysteresis, driven by a fake clock (plain `now` values in milliseconds).
final class HealthStateTests: XCTestCase {
    func testStartsUpByDefaultSoTrafficFlowsImmediately() {
        let s = HealthState(now: 0)
        XCTAssertTrue(s.isUp)
        XCTAssertEqual(s.rise, 2)
        XCTAssertEqual(s.fall, 3)
        XCTAssertFalse(HealthState(startUp: false, now: 0).isUp)
    }

    func testGoesDownOnlyAfterFallConsecutiveFailures() {
        var s = HealthState(rise: 2, fall: 3, now: 0)
        XCTAssertEqual(s.record(.checkFailed, now: 100), .none)
        XCTAssertEqual(s.record(.checkFailed, now: 200), .none)
        XCTAssertTrue(s.isUp)
        XCTAssertEqual(s.record(.checkFailed, now: 300), .becameDown)
        XCTAssertFalse(s.isUp)
        XCTAssertEqual(s.lastChangeAt, 300)
        XCTAssertEqual(s.transitions, 1)
        // Further failures while down are counted but change nothing.
        XCTAssertEqual(s.record(.checkFailed, now: 400), .none)
        XCTAssertEqual(s.consecutiveFailures, 4)
        XCTAssertEqual(s.failures, 4)
    }

    func testComesUpOnlyAfterRiseConsecutivePasses() {
        var s = HealthState(rise: 2, fall: 1, now: 0)
        XCTAssertEqual(s.record(.checkFailed, now: 10), .becameDown)
        XCTAssertEqual(s.record(.checkPassed, now: 20), .none)
        XCTAssertFalse(s.isUp)
        XCTAssertEqual(s.record(.checkPassed, now: 30), .becameUp)
        XCTAssertTrue(s.isUp)
        XCTAssertEqual(s.transitions, 2)
        XCTAssertEqual(s.consecutiveFailures, 0)
        XCTAssertEqual(s.record(.checkPassed, now: 40), .none)
    }

    func testPassingChecksWhileUpChangeNothing() {
        var s = HealthState(now: 0)
        for t in 1...10 { XCTAssertEqual(s.record(.checkPassed, now: UInt64(t) * 100), .none) }
        XCTAssertEqual(s.transitions, 0)
        XCTAssertEqual(s.consecutiveSuccesses, 10)
    }

    func testFlappingServerNeverCrossesEitherThreshold() {
        var up = HealthState(rise: 2, fall: 2, now: 0)
        for t in 0..<50 {
            XCTAssertEqual(up.record(t % 2 == 0 ? .checkFailed : .checkPassed, now: UInt64(t) * 100), .none)
        }
        XCTAssertTrue(up.isUp)
        XCTAssertEqual(up.transitions, 0)

        var down = HealthState(rise: 2, fall: 2, startUp: false, now: 0)
        for t in 0..<50 {
            XCTAssertEqual(down.record(t % 2 == 0 ? .checkPassed : .checkFailed, now: UInt64(t) * 100), .none)
        }
        XCTAssertFalse(down.isUp)
        XCTAssertEqual(down.transitions, 0)
    }

    func testTimeoutsCountAsFailures() {
        var s = HealthState(rise: 2, fall: 3, now: 0)
        XCTAssertEqual(s.record(.checkTimedOut, now: 100), .none)
        XCTAssertEqual(s.record(.checkFailed, now: 200), .none)
        XCTAssertEqual(s.record(.checkTimedOut, now: 300), .becameDown)
        XCTAssertEqual(s.failures, 3)
        // A timeout also breaks a rising streak.
        XCTAssertEqual(s.record(.checkPassed, now: 400), .none)
        XCTAssertEqual(s.record(.checkTimedOut, now: 500), .none)
        XCTAssertEqual(s.record(.checkPassed, now: 600), .none)
        XCTAssertEqual(s.record(.checkPassed, now: 700), .becameUp)
    }

    func testPassiveVerdictTakesServerDownAtOnceAndNeedsRiseFreshPasses() {
        var s = HealthState(rise: 3, fall: 3, now: 0)
        XCTAssertEqual(s.record(.checkPassed, now: 100), .none)
        XCTAssertEqual(s.record(.passiveDown, now: 150), .becameDown)
        XCTAssertEqual(s.record(.checkPassed, now: 200), .none)
        XCTAssertEqual(s.record(.checkPassed, now: 300), .none)
        // A second verdict while rising restarts the count.
        XCTAssertEqual(s.record(.passiveDown, now: 350), .none)
        XCTAssertEqual(s.record(.checkPassed, now: 400), .none)
        XCTAssertEqual(s.record(.checkPassed, now: 500), .none)
        XCTAssertEqual(s.record(.checkPassed, now: 600), .becameUp)
        XCTAssertEqual(s.transitions, 2)
        XCTAssertEqual(s.failures, 0, "passive verdicts are not check failures")
    }

    func testDowntimeAccumulatesOverDownPeriodsIncludingTheCurrentOne() {
        var s = HealthState(rise: 1, fall: 1, now: 1_000)
        XCTAssertEqual(s.downtimeMs(now: 5_000), 0)
        s.record(.checkFailed, now: 2_000)  // down at 2.0 s
        XCTAssertEqual(s.downtimeMs(now: 2_500), 500)
        s.record(.checkPassed, now: 4_000)  // up at 4.0 s: 2 s down
        XCTAssertEqual(s.downtimeMs(now: 9_000), 2_000)
        s.record(.checkFailed, now: 10_000)  // down again
        XCTAssertEqual(s.downtimeMs(now: 10_750), 2_750)
        s.record(.checkPassed, now: 11_000)
        XCTAssertEqual(s.downtimeMs(now: 99_000), 3_000)
        XCTAssertEqual(s.transitions, 4)
    }

    func testClockGoingBackwardsNeverProducesNegativeDowntime() {
        var s = HealthState(rise: 1, fall: 1, now: 1_000)
        s.record(.checkFailed, now: 2_000)
        XCTAssertEqual(s.downtimeMs(now: 1_500), 0)
        s.record(.checkPassed, now: 1_800)
        XCTAssertEqual(s.downtimeMs(now: 3_000), 0)
    }

    func testLoweredThresholdTakesEffectOnTheNextInput() {
        var s = HealthState(rise: 5, fall: 5, now: 0)
        s.record(.checkFailed, now: 1)
        s.record(.checkFailed, now: 2)
        s.setThresholds(rise: 2, fall: 2)
        XCTAssertEqual(s.record(.checkFailed, now: 3), .becameDown)
    }

    func testThresholdsBelowOneAreTreatedAsOne() {
        var s = HealthState(rise: 0, fall: -3, now: 0)
        XCTAssertEqual(s.record(.checkFailed, now: 1), .becameDown)
        XCTAssertEqual(s.record(.checkPassed, now: 2), .becameUp)
    }

    func testFirstCheckIsSpreadOverOneInterval() {
        var rng = SplitMix64(seed: 42)
        let delays = (0..<1000).map { _ in HealthSchedule.firstDelay(intervalMs: 2000, using: &rng) }
        XCTAssertTrue(delays.allSatisfy { $0 < 2000 })
        XCTAssertLessThan(delays.min()!, 200)
        XCTAssertGreaterThan(delays.max()!, 1800)
    }

    func testNextCheckIsIntervalWithinTenPercentJitter() {
        var rng = SplitMix64(seed: 7)
        let delays = (0..<1000).map { _ in HealthSchedule.nextDelay(intervalMs: 2000, using: &rng) }
        XCTAssertTrue(delays.allSatisfy { (1800...2200).contains($0) })
        XCTAssertGreaterThan(Set(delays).count, 100, "delays are spread, not constant")
        XCTAssertEqual(HealthSchedule.nextDelay(intervalMs: 5, using: &rng), 5, "no jitter below 1 ms of spread")
        XCTAssertEqual(HealthSchedule.nextDelay(intervalMs: 0, using: &rng), 1)
    }

    /// Checks of many servers fall due on shared slots (16 ms at a 2 s interval), each moved by less than a slot.
    func testDelaysAreAlignedToSlotsSoChecksFallDueTogether() {
        var rng = SplitMix64(seed: 3)
        let now: UInt64 = 123_457
        var dues = Set<UInt64>()
        for _ in 0..<1000 {
            let delay = HealthSchedule.nextDelay(intervalMs: 2000, using: &rng)
            let aligned = HealthSchedule.aligned(delay: delay, now: now, intervalMs: 2000)
            XCTAssertTrue((delay..<delay + 16).contains(aligned), "\(delay) -> \(aligned)")
            XCTAssertEqual((now + aligned) % 16, 0)
            dues.insert(now + aligned)
        }
        XCTAssertLessThanOrEqual(dues.count, 400 / 16 + 2, "1,000 checks over a 400 ms spread share ~26 slots")
        // Short intervals (tests, aggressive settings) keep millisecond slots: nothing moves.
        XCTAssertEqual(HealthSchedule.aligned(delay: 21, now: 5, intervalMs: 20), 21)
        XCTAssertEqual(HealthSchedule.aligned(delay: 0, now: 7, intervalMs: 64), 0)
    }
}

@testable import LBServer
import XCTest

/// The timeout state machine with a fake clock: each phase expires once, at its own deadline, and only there.
final class ConnectionTimerTests: XCTestCase {
    /// The defaults: client idle 60 s, client header 10 s, tunnel idle 300 s.
    let limits = ConnectionTimer.Limits(LBConfig.Timeouts())

    func testIdleClientExpiresAtTheIdleDeadline() {
        var t = ConnectionTimer()
        t.enter(.clientIdle, now: 1_000, limits: limits)
        XCTAssertEqual(t.expired(now: 60_999), .none)
        XCTAssertEqual(t.expired(now: 61_000), .clientIdle)
        XCTAssertEqual(t.expired(now: 99_000), .none, "fires once")
    }

    func testFirstHeadBytesSwitchAnIdleClientToTheHeaderDeadline() {
        var t = ConnectionTimer()
        t.enter(.clientIdle, now: 0, limits: limits)
        t.headStarted(now: 5_000, limits: limits)
        XCTAssertEqual(t.phase, .clientHeader)
        XCTAssertEqual(t.deadline, 15_000)
    }

    func testSlowlorisCannotExtendTheHeaderDeadlineByDripping() {
        var t = ConnectionTimer()
        t.enter(.clientIdle, now: 0, limits: limits)
        t.headStarted(now: 1_000, limits: limits)
        for now in stride(from: UInt64(2_000), to: 11_000, by: 1_000) {
            t.headStarted(now: now, limits: limits)  // one byte a second
            XCTAssertEqual(t.expired(now: now), .none)
        }
        XCTAssertEqual(t.expired(now: 11_000), .clientHeader)
    }

    func testTunnelActivityPushesTheTunnelDeadline() {
        var t = ConnectionTimer()
        t.enter(.tunnelIdle, now: 0, limits: limits)
        t.tunnelActivity(now: 200_000, limits: limits)
        XCTAssertEqual(t.expired(now: 300_000), .none)
        XCTAssertEqual(t.expired(now: 500_000), .tunnelIdle)
    }

    func testActivityOutsideATunnelDoesNotExtendAnything() {
        var t = ConnectionTimer()
        t.enter(.upstreamResponse, now: 0, limits: limits)
        t.tunnelActivity(now: 20_000, limits: limits)
        t.headStarted(now: 20_000, limits: limits)
        XCTAssertEqual(t.phase, .upstreamResponse)
        XCTAssertEqual(t.expired(now: 30_000), .upstreamResponse)
    }

    func testEachUpstreamPhaseUsesItsOwnLimit() {
        for (phase, limit) in [(ConnectionTimer.Phase.upstreamConnect, limits.upstreamConnect),
                               (.upstreamResponse, limits.upstreamResponse), (.upstreamIdle, limits.upstreamIdle)] {
            var t = ConnectionTimer()
            t.enter(phase, now: 7, limits: limits)
            XCTAssertEqual(t.expired(now: 7 + limit - 1), .none, "\(phase)")
            XCTAssertEqual(t.expired(now: 7 + limit), phase)
        }
    }

    func testDisarmedTimerNeverExpires() {
        var t = ConnectionTimer()
        t.enter(.clientHeader, now: 0, limits: limits)
        t.enter(.none, now: 0, limits: limits)
        XCTAssertEqual(t.expired(now: .max), .none)
    }
}

/// Health-check hysteresis for one server: a pure state machine that is fed check results
/// and passive verdicts, with the time injected as `now` (milliseconds on any monotonic clock), and returns
/// the transition to carry out. No I/O, no clock of its own; the caller flips the server's flag.
///
/// Rules (HAProxy's `rise`/`fall`):
/// - an up server goes down after `fall` consecutive failed checks (a timeout is a failure);
/// - a down server comes up after `rise` consecutive passed checks;
/// - any result of the other kind resets the streak, so alternating results never cross a threshold (flapping
///   servers stay where they are);
/// - a passive verdict (`passiveDown`: the proxy saw too many consecutive failures on real traffic) takes an
///   up server down at once, and in every case restarts the rise count: `rise` fresh passed checks are needed.
///
/// Initial state: **up** by default, so traffic flows as soon as the balancer starts rather than waiting
/// `rise × interval` for the first checks; a dead server is taken out after `fall` checks (or sooner by
/// passive checking). Pass `startUp: false` for the conservative choice (no traffic until `rise` passes).
///
/// A value type owned by one thread (the control loop in LBServer).
public struct HealthState: Sendable, Equatable {
    /// What happened.
    public enum Input: Sendable, Equatable {
        case checkPassed
        case checkFailed
        /// The check got no answer in time: counted exactly like `checkFailed`.
        case checkTimedOut
        /// Passive checking crossed its threshold of consecutive failures on proxied requests.
        case passiveDown
    }

    /// What the caller must do.
    public enum Transition: Sendable, Equatable {
        case none
        /// Mark the server up (take new requests).
        case becameUp
        /// Mark the server down (no new requests).
        case becameDown
    }

    /// Consecutive passes that bring a down server up (at least 1).
    public private(set) var rise: Int
    /// Consecutive failures that take an up server down (at least 1).
    public private(set) var fall: Int
    public private(set) var isUp: Bool
    public private(set) var consecutiveSuccesses = 0
    public private(set) var consecutiveFailures = 0
    /// `now` of the last transition (or of creation).
    public private(set) var lastChangeAt: UInt64
    /// Number of up↔down transitions since creation.
    public private(set) var transitions: UInt64 = 0
    /// Failed or timed-out checks since creation (passive verdicts not included).
    public private(set) var failures: UInt64 = 0
    /// Down time of the periods that have ended; see `downtimeMs(now:)` for the running total.
    private var endedDowntimeMs: UInt64 = 0

    public init(rise: Int = 2, fall: Int = 3, startUp: Bool = true, now: UInt64) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        isUp = startUp
        lastChangeAt = now
    }

    /// New thresholds (config reload); the streaks and the up/down state are kept, and a streak that already
    /// meets a lower threshold takes effect on the next input.
    public mutating func setThresholds(rise: Int, fall: Int) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
    }

    /// Feeds one input observed at `now`; returns the transition to carry out (at most one per input).
    /// `now` earlier than the last change (a clock going backwards) is treated as equal to it.
    @discardableResult
    public mutating func record(_ input: Input, now: UInt64) -> Transition {
        switch input {
        case .checkPassed:
            consecutiveSuccesses += 1
            consecutiveFailures = 0
            if !isUp && consecutiveSuccesses >= rise { return change(up: true, now: now) }
        case .checkFailed, .checkTimedOut:
            failures += 1
            consecutiveFailures += 1
            consecutiveSuccesses = 0
            if isUp && consecutiveFailures >= fall { return change(up: false, now: now) }
        case .passiveDown:
            consecutiveSuccesses = 0
            if isUp { return change(up: false, now: now) }
        }
        return .none
    }

    /// Milliseconds since the state last changed, counting from `start` at the earliest (a record that never
    /// changed was created at time 0, before the balancer's clock started).
    public func msSinceChange(now: UInt64, notBefore start: UInt64) -> UInt64 {
        now.saturatingSubtract(max(lastChangeAt, start))
    }

    /// Total time spent down, including the current down period if the server is down now.
    public func downtimeMs(now: UInt64) -> UInt64 {
        isUp ? endedDowntimeMs : endedDowntimeMs + now.saturatingSubtract(lastChangeAt)
    }

    private mutating func change(up: Bool, now: UInt64) -> Transition {
        let at = max(now, lastChangeAt)
        if !isUp { endedDowntimeMs += at - lastChangeAt }
        isUp = up
        lastChangeAt = at
        transitions += 1
        return up ? .becameUp : .becameDown
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func saturatingSubtract(_ other: UInt64) -> UInt64 { self > other ? self - other : 0 }
}

/// When to run checks: spread so that servers (and several balancers) do not probe in lockstep.
public enum HealthSchedule {
    /// Delay before the first check: uniform in `[0, interval)`, so a large server list does not probe all at
    /// once at startup.
    public static func firstDelay<G: RandomNumberGenerator>(intervalMs: UInt64, using rng: inout G) -> UInt64 {
        intervalMs == 0 ? 0 : UInt64.random(in: 0..<intervalMs, using: &rng)
    }

    /// Delay before the next check: `interval` ± `jitter` (a fraction, 0.1 = ±10%), never below 1 ms.
    public static func nextDelay<G: RandomNumberGenerator>(
        intervalMs: UInt64, jitter: Double = 0.1, using rng: inout G
    ) -> UInt64 {
        let spread = UInt64(Double(intervalMs) * min(max(jitter, 0), 1))
        guard spread > 0 else { return max(intervalMs, 1) }
        let low = intervalMs - spread
        return max(UInt64.random(in: low...(intervalMs + spread), using: &rng), 1)
    }

    /// `delay` lengthened so the check falls due at a multiple of a slot (1/64 of the interval, at most 16 ms,
    /// at least 1 ms) on the loop clock `now`: checks of many servers then fall due together and one wake-up of
    /// the checker's loop starts them all, and their answers tend to arrive together too. With 1,000 servers
    /// every 2 s that is at most 63 timer wake-ups a second instead of 500; no check moves by more than a slot.
    public static func aligned(delay: UInt64, now: UInt64, intervalMs: UInt64) -> UInt64 {
        let slot = max(1, min(16, intervalMs / 64))
        let due = now &+ delay
        let rounded = (due &+ slot &- 1) / slot &* slot
        return rounded &- now
    }
}

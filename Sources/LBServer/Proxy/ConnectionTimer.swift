/// The one timeout that governs a connection at a time, as a small state machine with the clock injected
/// (`now` in loop milliseconds). Connections enter a phase when their state changes; the worker's sweep asks
/// `expired(now:)` and the connection carries out the returned action. No timer handle per connection and no
/// system call per request: a deadline is two stores.
///
/// Phases and what their expiry means (RFC 9112 §9.8 leaves the values to us; defaults are in LBConfig.Timeouts):
/// - `clientIdle`: a keep-alive client sent nothing since its last response → close quietly.
/// - `clientHeader`: a request head started but is incomplete (slowloris) → answer 408 and close.
/// - `upstreamConnect`: the backend did not accept in time → try the next candidate.
/// - `upstreamResponse`: the backend did not start its response in time → 504 (or retry).
/// - `upstreamIdle`: a pooled connection stayed unused → close it.
/// - `tunnelIdle`: no byte either way in an upgraded connection → close both sides.
struct ConnectionTimer: Equatable {
    enum Phase: Equatable { case none, clientIdle, clientHeader, upstreamConnect, upstreamResponse, upstreamIdle, tunnelIdle }

    struct Limits: Equatable {
        var clientIdle: UInt64
        var clientHeader: UInt64
        var upstreamConnect: UInt64
        var upstreamResponse: UInt64
        var upstreamIdle: UInt64
        var tunnelIdle: UInt64
    }

    private(set) var phase = Phase.none
    private(set) var deadline: UInt64 = 0

    /// Starts `phase` at `now` (`.none` disarms).
    mutating func enter(_ phase: Phase, now: UInt64, limits: Limits) {
        self.phase = phase
        switch phase {
        case .none: deadline = 0
        case .clientIdle: deadline = now + limits.clientIdle
        case .clientHeader: deadline = now + limits.clientHeader
        case .upstreamConnect: deadline = now + limits.upstreamConnect
        case .upstreamResponse: deadline = now + limits.upstreamResponse
        case .upstreamIdle: deadline = now + limits.upstreamIdle
        case .tunnelIdle: deadline = now + limits.tunnelIdle
        }
    }

    /// The first bytes of a request head arrived: an idle client now has `clientHeader` to finish the head.
    /// Bytes in other phases do not extend anything (a slow head cannot keep itself alive by dripping).
    mutating func headStarted(now: UInt64, limits: Limits) {
        if phase == .clientIdle { enter(.clientHeader, now: now, limits: limits) }
    }

    /// Activity in a tunnel pushes its idle deadline.
    mutating func tunnelActivity(now: UInt64, limits: Limits) {
        if phase == .tunnelIdle { deadline = now + limits.tunnelIdle }
    }

    /// The phase that expired at `now`, or `.none`. Expiry disarms the timer (it fires once).
    mutating func expired(now: UInt64) -> Phase {
        guard phase != .none, now >= deadline else { return .none }
        let p = phase
        phase = .none
        deadline = 0
        return p
    }
}

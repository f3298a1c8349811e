/// The one timeout that governs a connection at a time, as a small state machine with the clock injected
/// (`now` in loop milliseconds). Connections enter a phase when their state changes; the worker's sweep asks
/// `expired(now:)` and the connection carries out the returned action. No timer handle per connection and no
/// system call per request: a deadline is two stores.
///
/// Phases and what their expiry means (RFC 9112 §9.8 leaves the values to us; each phase's limit is the
/// `Timeout` that names it as its phase, with that timeout's key and default):
/// - `clientIdle`: a keep-alive client sent nothing since its last response → close quietly.
/// - `clientHeader`: a request head started but is incomplete (slowloris) → answer 408 and close.
/// - `clientSend`: a response waits on a client that does not read it (its backend is paused) → reset the client.
/// - `upstreamConnect`: the backend did not accept in time → try the next candidate.
/// - `upstreamResponse`: the backend did not start its response in time → 504 (or retry).
/// - `upstreamIdle`: a pooled connection stayed unused → close it.
/// - `tunnelIdle`: no byte either way in an upgraded connection → close both sides.
struct ConnectionTimer: Equatable {
    /// Each phase but `.none` is the `phase` of exactly one `Timeout`, which gives its limit.
    enum Phase: Int, CaseIterable {
        case none, clientIdle, clientHeader, clientSend, upstreamConnect, upstreamResponse, upstreamIdle, tunnelIdle
    }

    /// Milliseconds per phase, filled from the `Timeout` table (`init(_:)`); `.none` has none.
    struct Limits {
        /// By `Phase.rawValue`, one slot per case (a new phase raises the 8): a fixed array, so handing the
        /// limits to `enter` copies no heap buffer.
        private var ms = InlineArray<8, UInt64>(repeating: 0)

        /// Each phase's limit from the timeout that governs it.
        init(_ timeouts: LBConfig.Timeouts) {
            for timeout in Timeout.allCases {
                if let phase = timeout.phase { self[phase] = timeouts[timeout] }
            }
        }

        @inline(__always)
        subscript(phase: Phase) -> UInt64 {
            get { ms[phase.rawValue] }
            set { ms[phase.rawValue] = newValue }
        }

        // The names the connections read.
        var clientIdle: UInt64 { self[.clientIdle] }
        var clientHeader: UInt64 { self[.clientHeader] }
        var clientSend: UInt64 { self[.clientSend] }
        var upstreamConnect: UInt64 { self[.upstreamConnect] }
        var upstreamResponse: UInt64 { self[.upstreamResponse] }
        var upstreamIdle: UInt64 { self[.upstreamIdle] }
        var tunnelIdle: UInt64 { self[.tunnelIdle] }
    }

    private(set) var phase = Phase.none
    private(set) var deadline: UInt64 = 0

    /// Starts `phase` at `now` (`.none` disarms). Inlined: a connection enters a phase several times per
    /// request, and each call site passes a constant phase.
    @inline(__always)
    mutating func enter(_ phase: Phase, now: UInt64, limits: Limits) {
        self.phase = phase
        deadline = phase == .none ? 0 : now + limits[phase]
    }

    /// The first bytes of a request head arrived: an idle client now has `clientHeader` to finish the head.
    /// Bytes in other phases do not extend anything (a slow head cannot keep itself alive by dripping).
    mutating func headStarted(now: UInt64, limits: Limits) {
        if phase == .clientIdle { enter(.clientHeader, now: now, limits: limits) }
    }

    /// Activity in a tunnel pushes its idle deadline.
    mutating func tunnelActivity(now: UInt64, limits: Limits) {
        if phase == .tunnelIdle { deadline = now + limits[.tunnelIdle] }
    }

    /// How long a connection idles (in keep-alive or in a pool) before it gives its TLS record buffers back: a
    /// busy one keeps them, since freeing and reallocating them around every record costs CPU.
    static let idleBeforeBufferRelease: UInt64 = 1_000

    /// Whether the current phase is `phase` and began at least `ms` before `now`.
    func hasLasted(_ ms: UInt64, in phase: Phase, now: UInt64, limits: Limits) -> Bool {
        self.phase == phase && now &+ limits[phase] >= deadline &+ ms
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

/// Whether a worker takes one more new connection now; connections beyond the caps stay in the kernel's
/// accept queue and are taken in a later turn. Pure: the worker gives it the loop's time in ms.
///
/// - TLS (`limits.tls_handshakes_per_turn` / `_per_second`): a full handshake costs the loop hundreds of
///   microseconds of OpenSSL, so a burst of new clients could stall every connection the loop serves (nginx and
///   HAProxy leave connections in the queue over `maxsslrate` too).
/// - Plain (`limits.accepts_per_turn`, as HAProxy's `tune.maxaccept`): libuv otherwise accepts every pending
///   connection in one go, and a turn that starts hundreds of exchanges together serves them in one long batch
///   with a working set past the caches; taking a share per turn interleaves new clients with the responses
///   already under way.
struct AcceptAdmission {
    enum Verdict: Equatable {
        case admit
        /// This turn's share is taken: try again in the next loop turn.
        case nextTurn
        /// The per-second rate is spent: try again after this many ms.
        case wait(ms: UInt64)
    }

    let perTurn: Int?
    let perSecond: Int?
    /// Admitted since the last `newTurn()`.
    private(set) var admittedThisTurn = 0
    /// Token bucket for `perSecond`: holds at most one second's worth, refilled continuously.
    private var tokens: Double
    private var refilledAt: UInt64

    init(perTurn: Int?, perSecond: Int?, now: UInt64) {
        self.perTurn = perTurn
        self.perSecond = perSecond
        tokens = Double(perSecond ?? 0)
        refilledAt = now
    }

    var isLimited: Bool { perTurn != nil || perSecond != nil }

    mutating func admit(now: UInt64) -> Verdict {
        if let perTurn, admittedThisTurn >= perTurn { return .nextTurn }
        if let perSecond {
            let rate = Double(perSecond)
            tokens = min(rate, tokens + Double(now &- refilledAt) * rate / 1000)
            refilledAt = now
            if tokens < 1 {
                // Time until one whole token, at least 1 ms.
                return .wait(ms: max(1, UInt64(((1 - tokens) * 1000 / rate).rounded(.up))))
            }
            tokens -= 1
        }
        admittedThisTurn += 1
        return .admit
    }

    mutating func newTurn() { admittedThisTurn = 0 }
}

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
    /// With `grows`, the share doubles after each turn that used it whole and is back to `perTurn` after one that
    /// did not: a steady stream of new connections is taken `perTurn` at a time, while a storm (thousands
    /// connecting at once) is drained in a few turns instead of waiting seconds in the accept queue.
    let grows: Bool
    /// This turn's share (`perTurn`, or more while it grows).
    private(set) var share: Int
    /// Admitted since the last `newTurn()`.
    private(set) var admittedThisTurn = 0
    /// Token bucket for `perSecond`: holds at most one second's worth, refilled continuously.
    private var tokens: Double
    private var refilledAt: UInt64

    init(perTurn: Int?, perSecond: Int?, grows: Bool = false, now: UInt64) {
        self.perTurn = perTurn
        self.perSecond = perSecond
        self.grows = grows
        share = perTurn ?? .max
        tokens = Double(perSecond ?? 0)
        refilledAt = now
    }

    var isLimited: Bool { perTurn != nil || perSecond != nil }

    mutating func admit(now: UInt64) -> Verdict {
        if perTurn != nil, admittedThisTurn >= share { return .nextTurn }
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

    mutating func newTurn() {
        if grows, let perTurn { share = admittedThisTurn >= share ? min(share * 2, 1 << 20) : perTurn }
        admittedThisTurn = 0
    }
}

import LBCore
import LBDNS

/// The DNS source's decisions, as a state machine with the clock injected: after each resolution, whether to
/// publish a server set, when to ask again and what to log. No I/O; `DNSSource` carries the decisions out.
///
/// - An answer with servers publishes them when they differ from the set in force, and the next query comes
///   after the answer's smallest TTL, clamped to `min_ttl...max_ttl`.
/// - A failure (SERVFAIL, REFUSED, a timeout, a refused connection, a malformed or empty answer) keeps the set
///   in force; the next query comes after `min_ttl`, doubling with each failure in a row up to `max_ttl`.
/// - NXDOMAIN keeps the set in force until `nxdomain_hold` has passed since the first NXDOMAIN of the run,
///   then publishes an empty set: the name was removed, not merely unreachable. Queries meanwhile follow the
///   failure back-off, but never later than the end of the hold.
///
/// Logging is per change of state (first failure of a kind, recovery, hold start, emptying), not per query.
struct DNSRefresh {
    struct Settings: Equatable {
        var minTTLMs: UInt64
        var maxTTLMs: UInt64
        var nxdomainHoldMs: UInt64
    }

    enum Outcome: Equatable {
        case answer([ServerSpec], ttlSeconds: UInt32)
        case failure(DNSFailureKind, String)
    }

    enum Log: Equatable {
        /// The first answer, or the first after failures (`after` names the last failure kind).
        case answered(after: DNSFailureKind?)
        /// Failing now with this kind (first failure, or a different kind than the previous one).
        case failing(DNSFailureKind, String)
        /// The first NXDOMAIN in a row: the set in force stays until `untilMs`.
        case nxdomainHeld(untilMs: UInt64)
        /// The hold ended with the name still missing: the empty set is published.
        case nxdomainEmptied
    }

    struct Decision: Equatable {
        /// The set to publish; nil: routing stays as it is.
        var publish: [ServerSpec]?
        var nextQueryInMs: UInt64
        var log: Log?
    }

    let settings: Settings
    /// The set last published from an answer (or emptied after NXDOMAIN); nil before the first answer.
    private(set) var current: [ServerSpec]?
    /// The kind of the failures in a row, nil while answers come.
    private(set) var failing: DNSFailureKind?
    private(set) var consecutiveFailures = 0
    /// Loop time of the first NXDOMAIN in a row.
    private(set) var nxdomainSinceMs: UInt64?

    init(settings: Settings) { self.settings = settings }

    /// The delay after an answer whose smallest TTL is `ttlSeconds`.
    static func delay(ttlSeconds: UInt32, _ s: Settings) -> UInt64 {
        min(max(UInt64(ttlSeconds) * 1000, s.minTTLMs), s.maxTTLMs)
    }

    /// The delay after the `failures`-th failure in a row (1 = the first): `min_ttl` doubled per failure after
    /// the first, capped at `max_ttl`.
    static func backoff(failures: Int, _ s: Settings) -> UInt64 {
        let doublings = UInt64(min(max(failures - 1, 0), 20))
        return min(s.minTTLMs << doublings, s.maxTTLMs)
    }

    mutating func resolved(_ outcome: Outcome, now: UInt64) -> Decision {
        switch outcome {
        case .answer(let servers, let ttl) where !servers.isEmpty:
            let log: Log? = current == nil || failing != nil ? .answered(after: failing) : nil
            let changed = servers != current
            current = servers
            failing = nil
            consecutiveFailures = 0
            nxdomainSinceMs = nil
            return Decision(
                publish: changed ? servers : nil, nextQueryInMs: Self.delay(ttlSeconds: ttl, settings), log: log)
        case .answer:
            return failed(.noData, "the answer has records but no usable address", now: now)
        case .failure(let kind, let detail):
            return failed(kind, detail, now: now)
        }
    }

    private mutating func failed(_ kind: DNSFailureKind, _ detail: String, now: UInt64) -> Decision {
        consecutiveFailures += 1
        let backoff = Self.backoff(failures: consecutiveFailures, settings)
        var log: Log? = failing == kind ? nil : .failing(kind, detail)
        failing = kind
        guard kind == .nxdomain else {
            nxdomainSinceMs = nil
            return Decision(publish: nil, nextQueryInMs: backoff, log: log)
        }
        let since = nxdomainSinceMs ?? now
        if nxdomainSinceMs == nil {
            nxdomainSinceMs = now
            if current?.isEmpty == false { log = .nxdomainHeld(untilMs: now + settings.nxdomainHoldMs) }
        }
        let end = since + settings.nxdomainHoldMs
        if now >= end {
            guard current?.isEmpty == false else { return Decision(publish: nil, nextQueryInMs: backoff, log: log) }
            current = []
            return Decision(publish: [], nextQueryInMs: backoff, log: .nxdomainEmptied)
        }
        return Decision(publish: nil, nextQueryInMs: max(1, min(backoff, end - now)), log: log)
    }
}

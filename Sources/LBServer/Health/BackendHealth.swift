import Atomics
import Foundation
import LBCore
import Synchronization

/// The health side of one `Backend`: the passive failure counter (atomics, any thread) and the active
/// checker's record (state machine and last check result, behind a lock).
///
/// Shared by every `Backend` object of the same server (a reweighted copy shares it), so health survives a
/// snapshot rebuild. The up/down flag itself stays `Backend.isUp`, which the hot path reads.
final class BackendHealth: Sendable {
    /// The result of the latest active check.
    struct CheckRecord: Sendable, Equatable {
        var ok: Bool
        /// HTTP status for `http` checks that got an answer.
        var code: Int?
        /// Why it failed (connect error, timeout, unexpected status, garbage); nil when ok.
        var error: String?
        var durationMs: UInt64
        /// Wall-clock time the check finished.
        var at: Date
    }

    /// What the admin API shows; written by the control loop only.
    struct Record: Sendable {
        var state: HealthState
        var lastCheck: CheckRecord?
    }

    // Passive counting: written by workers (any thread) on the proxy path, so lock-free.
    private let passiveFailures = ManagedAtomic<Int>(0)
    /// 0 = passive checking off. Set by the health checker from the config.
    private let passiveThreshold = ManagedAtomic<Int>(0)
    /// Set when the counter reached the threshold; consumed by the checker (`takePassiveDown`).
    private let passiveDownPending = ManagedAtomic<Bool>(false)

    private let record: Mutex<Record>

    init(now: UInt64 = 0) {
        record = Mutex(Record(state: HealthState(now: now), lastCheck: nil))
    }

    // MARK: passive (any thread)

    /// Counts one failed proxied request. Returns true when this failure reached the threshold, in which
    /// case the caller (`Backend.recordPassiveFailure`) marks the server down. Lock-free.
    func countPassiveFailure() -> Bool {
        let threshold = passiveThreshold.load(ordering: .relaxed)
        guard threshold > 0 else { return false }
        let n = passiveFailures.loadThenWrappingIncrement(ordering: .relaxed) + 1
        guard n == threshold else { return false }
        passiveDownPending.store(true, ordering: .releasing)
        return true
    }

    /// Resets the consecutive count. Reads first so the common case (already 0) writes nothing and does
    /// not bounce the cache line between workers.
    func countPassiveSuccess() {
        if passiveFailures.load(ordering: .relaxed) != 0 {
            passiveFailures.store(0, ordering: .relaxed)
        }
    }

    var consecutivePassiveFailures: Int { passiveFailures.load(ordering: .relaxed) }

    /// Control loop: the threshold from `health_check.passive_failures` (0 = off).
    func setPassiveThreshold(_ n: Int) { passiveThreshold.store(max(0, n), ordering: .relaxed) }

    /// Control loop: true once after the passive threshold was reached; the checker feeds `.passiveDown`
    /// to the state machine so that `rise` active passes are needed to bring the server back.
    func takePassiveDown() -> Bool {
        passiveDownPending.exchange(false, ordering: .acquiring)
    }

    /// Control loop, when the server comes back up: a new streak starts from zero.
    func resetPassive() { passiveFailures.store(0, ordering: .relaxed) }

    // MARK: active record (control loop writes, anyone reads)

    func withRecord<R>(_ body: (inout Record) -> R) -> R {
        record.withLock { body(&$0) }
    }

    var snapshot: Record { record.withLock { $0 } }
}

import CLibUV
import Foundation
import LBCore
import LBTLS
import LBUV
import Logging

/// Active health checks for every server in the routing state, on the control loop.
///
/// One `Target` per server id: one `LoopTimer` that alternates between "wait for the next check" (interval
/// ± 10%, the first one spread over `[0, interval)`) and "this check's deadline" (`timeout`), plus at most one
/// `HealthProbe` in flight, which with `reuse_connection` is the connection the last check left open when the
/// server kept it. Nothing blocks the loop: probes are non-blocking connects and reads.
///
/// Results go into the server's `HealthState` (kept in `Backend.health`, shared across snapshot rebuilds);
/// a transition flips `Backend.setUp`, which workers read lock-free, and is logged. Health never rebuilds
/// the routing table: lookups skip servers that are not up.
///
/// Threads: every method runs on the control loop's thread.
final class HealthChecker {
    private final class Target {
        var backend: Backend
        var settings: LBConfig.HealthCheck
        var timer: LoopTimer?
        /// The check in flight.
        var probe: HealthProbe?
        /// The connection kept for the next check (`reuse_connection`), the one in flight included.
        var connection: HealthProbe?
        /// `connection` was set up under TLS settings since replaced: the next check connects anew.
        var connectionIsStale = false
        var probeStartedNs: UInt64 = 0
        var timedOut = false
        /// A passive verdict consumed while this probe was in flight: its pass started too early to count.
        var passiveSinceProbeStart = false
        /// The TLS session the next check resumes (TLS servers): a check costs no full handshake each time.
        let tlsSessions = TLSClientSessionCache()
        /// The `http` request for the current settings, built at the first check after `sync` changed them
        /// rather than for every check.
        var cachedRequest: [UInt8]?

        var request: [UInt8] {
            if let cachedRequest { return cachedRequest }
            let bytes = HealthProbe.request(
                path: settings.path, host: backend.spec.host, port: backend.spec.port,
                keepAlive: settings.reuseConnection)
            cachedRequest = bytes
            return bytes
        }

        init(backend: Backend, settings: LBConfig.HealthCheck) {
            self.backend = backend
            self.settings = settings
        }
    }

    let loop: EventLoop
    let logger: Logger
    private var targets: [String: Target] = [:]
    private var isStopped = false
    /// When set, new servers get their first check within this many ms instead of spread over a whole interval:
    /// a hot upgrade's successor waits for those checks before it accepts.
    var firstCheckWithinMs: UInt64?
    private var rng = SystemRandomNumberGenerator()

    init(loop: EventLoop, logger: Logger) {
        self.loop = loop
        self.logger = logger
    }

    /// Number of servers being checked (tests, admin).
    var checkedServers: Int { targets.count }

    /// Follows the server set of `state`: starts checking new servers, stops checking removed ones (closing
    /// their timer and probe), and applies `config`'s settings (per-server overrides included) to the rest.
    /// A server whose id now points at a different address (a new `Backend.health`) starts over. Call after
    /// every publication of a routing state. No effect after `stop()`.
    func sync(with state: RoutingState, config: LBConfig) {
        guard !isStopped else { return }
        var present = Set<String>()
        for backend in state.backends {
            let id = backend.spec.id
            present.insert(id)
            let settings = config.healthCheck(forServer: id)
            backend.health.setPassiveThreshold(settings.passiveFailures)
            backend.health.withRecord { $0.state.setThresholds(rise: settings.rise, fall: settings.fall) }
            if let target = targets[id], target.backend.health === backend.health {
                if target.backend.tls != backend.tls {
                    // New TLS settings (a reloaded CA or certificate, another name): the next check handshakes
                    // with them rather than going on over the session the old ones verified.
                    target.connectionIsStale = true
                }
                target.backend = backend  // perhaps a reweighted copy: same flags and health
                target.settings = settings  // interval and timeout changes apply from the next check
                target.cachedRequest = nil
                continue
            }
            if let old = targets.removeValue(forKey: id) { close(old) }
            let target = Target(backend: backend, settings: settings)
            target.timer = LoopTimer(loop: loop) { [weak self, weak target] in
                guard let self, let target else { return }
                self.timerFired(target)
            }
            targets[id] = target
            let within = min(settings.intervalMs, firstCheckWithinMs ?? .max)
            let first = HealthSchedule.firstDelay(intervalMs: within, using: &rng)
            target.timer?.start(timeout: HealthSchedule.aligned(delay: first, now: loop.now, intervalMs: within))
        }
        for (id, target) in targets where !present.contains(id) {
            targets[id] = nil
            close(target)
        }
    }

    /// Cancels every probe and closes every timer; the loop can then end with none of our handles open.
    /// Idempotent.
    func stop() {
        isStopped = true
        let all = targets.values
        targets.removeAll()
        for target in all { close(target) }
    }

    private func close(_ target: Target) {
        let probe = target.probe
        target.probe = nil  // the cancellation below is then ignored by `probeFinished`
        probe?.cancel(reason: "check stopped")
        target.connection?.cancel(reason: "check stopped")
        target.connection = nil
        target.timer?.close()
        target.timer = nil
    }

    // MARK: one check

    private func timerFired(_ target: Target) {
        if let probe = target.probe {
            target.timedOut = true
            probe.cancel(reason: "timeout after \(target.settings.timeoutMs) ms")
            return
        }
        consumePassiveVerdict(target)
        guard target.settings.enabled else {
            // Active checks off for this server: each interval counts as a pass, so a passive down lasts
            // `rise × interval` instead of forever. A connection kept from when they were on goes.
            target.connection?.cancel(reason: "checks disabled")
            target.connection = nil
            apply(.checkPassed, to: target, check: nil)
            scheduleNext(target)
            return
        }
        target.timedOut = false
        target.passiveSinceProbeStart = false
        target.probeStartedNs = uv_hrtime()
        // The deadline is armed before the check starts: an immediate error finishes the probe inside `start`
        // (or `checkAgain`) and re-arms the timer for the next check.
        target.timer?.start(timeout: max(target.settings.timeoutMs, 1))
        let (mode, reuse) = probeMode(target)
        if reuse, !target.connectionIsStale, let kept = target.connection, kept.isReusable {
            target.probe = kept
            kept.checkAgain(mode: mode) { [weak self, weak target] outcome in
                guard let self, let target else { return }
                self.probeFinished(target, outcome)
            }
            return
        }
        connect(target)
    }

    /// What the next probe of `target` sends, and whether its connection is kept for the one after.
    private func probeMode(_ target: Target) -> (HealthProbe.Mode, reuse: Bool) {
        let s = target.settings
        switch s.type {
        case .tcp:
            return (.tcp, false)
        case .http:
            return (.http(request: target.request, expected: s.expectedStatus), s.reuseConnection)
        }
    }

    /// The check in progress goes over a new connection (none was reusable: closed by the server, still
    /// reading the last response, reuse turned off; or the kept one was closed under the check).
    private func connect(_ target: Target) {
        target.connection?.cancel(reason: "replaced")
        target.connectionIsStale = false
        let (mode, reuse) = probeMode(target)
        let tls = target.backend.tls.map { (settings: $0, sessions: target.tlsSessions) }
        let probe = HealthProbe(loop: loop, mode: mode, tls: tls, reuse: reuse) { [weak self, weak target] outcome in
            guard let self, let target else { return }
            self.probeFinished(target, outcome)
        }
        target.probe = probe
        target.connection = reuse ? probe : nil
        probe.start(address: target.backend.address)
    }

    private func probeFinished(_ target: Target, _ outcome: HealthProbe.Outcome) {
        guard !isStopped, target.probe != nil else { return }
        if outcome == .keptConnectionClosed {
            // The keep-alive race: the server closed the kept connection as the probe went out. Nothing was
            // answered; the same check goes over a new connection, within the same deadline.
            target.connection = nil
            connect(target)
            return
        }
        target.probe = nil
        let durationMs = (uv_hrtime() - target.probeStartedNs) / 1_000_000
        consumePassiveVerdict(target)
        let check: BackendHealth.CheckRecord
        let input: HealthState.Input
        switch outcome {
        case .passed(let code):
            check = .init(ok: true, code: code, error: nil, durationMs: durationMs, at: Date())
            input = .checkPassed
        case .failed(let code, let error):
            check = .init(ok: false, code: code, error: error, durationMs: durationMs, at: Date())
            input = target.timedOut ? .checkTimedOut : .checkFailed
        case .keptConnectionClosed:
            return  // handled above
        }
        if input == .checkPassed && target.passiveSinceProbeStart {
            // Started before the passive verdict: record it, but do not let it count towards `rise`.
            target.backend.health.withRecord { $0.lastCheck = check }
        } else {
            apply(input, to: target, check: check)
        }
        if !check.ok {
            logger.debug("health check failed", metadata: [
                "server": "\(target.backend.spec.id)", "error": "\(check.error ?? "")", "duration_ms": "\(durationMs)",
            ])
        }
        scheduleNext(target)
    }

    private func scheduleNext(_ target: Target) {
        let interval = target.settings.intervalMs
        let delay = HealthSchedule.nextDelay(intervalMs: interval, using: &rng)
        target.timer?.start(timeout: HealthSchedule.aligned(delay: delay, now: loop.now, intervalMs: interval))
    }

    // MARK: state changes

    /// Feeds a passive verdict recorded by a worker since the last look into the state machine.
    private func consumePassiveVerdict(_ target: Target) {
        let health = target.backend.health
        guard health.takePassiveDown() else { return }
        target.passiveSinceProbeStart = true
        let transition = health.withRecord { $0.state.record(.passiveDown, now: loop.now) }
        let backend = target.backend
        backend.setUp(false)  // the worker already did; the state machine now agrees
        if transition == .becameDown {
            logger.warning("server down", metadata: [
                "server": "\(backend.spec.id)", "result": "passive",
                "consecutive_failures": "\(health.consecutivePassiveFailures)",
            ])
        }
    }

    private func apply(_ input: HealthState.Input, to target: Target, check: BackendHealth.CheckRecord?) {
        let backend = target.backend
        let transition = backend.health.withRecord { record in
            if let check { record.lastCheck = check }
            return record.state.record(input, now: loop.now)
        }
        if transition == .none { return }
        var metadata: Logger.Metadata = ["server": "\(backend.spec.id)"]
        if let check {
            metadata["result"] = "\(check.ok ? "ok" : "fail")"
            metadata["duration_ms"] = "\(check.durationMs)"
            if let code = check.code { metadata["code"] = "\(code)" }
            if let error = check.error { metadata["error"] = "\(error)" }
        } else {
            metadata["result"] = "active checks disabled"
        }
        switch transition {
        case .none:
            break
        case .becameUp:
            backend.health.resetPassive()
            backend.setUp(true)
            logger.info("server up", metadata: metadata)
        case .becameDown:
            backend.setUp(false)
            logger.warning("server down", metadata: metadata)
        }
    }
}

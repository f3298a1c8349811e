import Foundation
import LBCore
import LBUV
import Logging

/// Keeps the server set in step with etcd: reads the prefix, applies it, then watches it. Control loop only;
/// every call to etcd is a non-blocking `EtcdCall`, and the data path never waits on any of it (it routes with
/// the last published snapshot).
///
/// The cycle, per connection to one endpoint:
/// 1. (with credentials) authenticate for a token;
/// 2. bootstrap or resync: range the whole prefix and apply only what differs from the running set; or, when a
///    set has been applied before, check etcd's current revision first: a revision below the one applied means
///    etcd was restored from a backup, so everything is read again; otherwise
/// 3. watch from the last revision actually applied + 1 (never a revision guessed from a timeout), with
///    `prev_kv` and progress notifications, applying each batch of events as it arrives. A watch cancelled for
///    compaction means events were lost: read everything again and apply the difference.
///
/// Any failure closes the call, moves to the next endpoint and retries: at once (with a few ms of jitter) while
/// there are endpoints not yet tried in this round, then with exponential back-off and jitter. From the first
/// failure until a watch is running again the source is stale, and `staleSinceMs` says since when.
final class EtcdSource {
    enum Phase: String {
        case starting, authenticating, ranging, checking, watching, waiting, stopped
    }

    let settings: LBConfig.Etcd
    private let loop: EventLoop
    private let logger: Logger
    private let addresses: [SocketAddress]
    /// Called with the set after every change that altered it (not for a batch that left it as it was).
    private let apply: (EtcdServerSet, EtcdServerSet.Change) -> Void

    private(set) var set: EtcdServerSet
    private(set) var phase = Phase.starting
    private(set) var endpointIndex = 0
    /// True while a watch is established: the set is as current as etcd's last message.
    private(set) var isCurrent = false
    /// Loop time (ms) when the set stopped being known current; nil while current. Set at start too: until the
    /// first watch runs, the set (empty) is not etcd's.
    private(set) var staleSinceMs: UInt64?
    private(set) var lastError: String?
    /// Wall-clock time of the last apply that changed routing, and the revision it brought.
    private(set) var lastAppliedAt: Date?
    private(set) var lastAppliedRevision: Int64 = 0
    private(set) var lastChange = EtcdServerSet.Change()
    /// Full reads after the first (compaction, restored etcd), and connection failures.
    private(set) var resyncs = 0
    private(set) var failures = 0

    private var token: String?
    private var call: EtcdCall?
    /// Numbers the calls: a call's events count only while it is the current one (`dropCall` moves on).
    private var callSerial = 0
    private var retryTimer: LoopTimer?
    private var consecutiveFailures = 0
    /// Set when the next connection must read everything (compaction, restore).
    private var needsFullRead = true

    /// Callers waiting for this instance to apply a revision (`whenApplied`), by number.
    private var waiters: [Int: (revision: Int64, timer: LoopTimer, done: (Bool) -> Void)] = [:]
    private var nextWaiter = 0

    static let responseTimeoutMs: UInt64 = 5_000
    static let backoffBaseMs: UInt64 = 100
    static let backoffCapMs: UInt64 = 2_000

    /// Resolves every endpoint now (getaddrinfo: at start only). Throws `SetupError` naming one that does not
    /// resolve.
    init(
        settings: LBConfig.Etcd, loop: EventLoop, logger: Logger,
        apply: @escaping (EtcdServerSet, EtcdServerSet.Change) -> Void
    ) throws(SetupError) {
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.apply = apply
        var addresses: [SocketAddress] = []
        for endpoint in settings.endpoints {
            do {
                addresses.append(try SocketAddress.resolve(host: endpoint.host, port: endpoint.port))
            } catch {
                throw SetupError("server_source.endpoints: \(endpoint): \(error)")
            }
        }
        self.addresses = addresses
        set = EtcdServerSet(prefix: settings.serversPrefix)
        staleSinceMs = loop.now
    }

    var endpoint: HostPort { settings.endpoints[endpointIndex] }

    func start() {
        connect()
    }

    /// Ends the current call and any retry; nothing more happens. Idempotent.
    func stop() {
        phase = .stopped
        retryTimer?.close()
        retryTimer = nil
        dropCall("stopped")
        for id in Array(waiters.keys) { finishWaiter(id, applied: false) }
    }

    // MARK: writes

    enum WriteOutcome: Equatable {
        /// Done, at this revision.
        case committed(revision: Int64)
        /// The precondition did not hold: another write came first.
        case conflict
        /// etcd could not be asked or did not answer; nothing is known to have changed.
        case unavailable(String)
    }

    /// Writes `value` at `key` (deletes it when nil) if `precondition` holds, as one etcd transaction on its own
    /// connection to the current endpoint; `done` is called once, on the loop. Without a running watch it fails
    /// at once: a write lb cannot see applied is not offered.
    func write(
        key: String, precondition: EtcdWire.Precondition, value: [UInt8]?,
        done: @escaping (WriteOutcome) -> Void
    ) {
        guard isCurrent else {
            return done(.unavailable("etcd is unreachable (\(lastError ?? "not connected yet"))"))
        }
        request("/v3/kv/txn", EtcdWire.txnRequest(key: key, precondition: precondition, value: value)) { result in
            switch result {
            case .success((200, let body)):
                do {
                    let result = try EtcdWire.decodeTxn(body)
                    done(result.succeeded ? .committed(revision: result.revision) : .conflict)
                } catch {
                    done(.unavailable("etcd: transaction: \(error)"))
                }
            case .success((let status, let body)):
                done(.unavailable("etcd: transaction: HTTP \(status): \(EtcdWire.errorMessage(body))"))
            case .failure(let error):
                done(.unavailable(error.message))
            }
        }
    }

    /// One call to the current endpoint on a connection of its own, independent of the watch (leases, reads for
    /// the admin API). `done` gets the status and body, or why there was no answer; once, on the loop.
    /// `timeoutMs` caps both the connect and the answer (default: `dial_timeout`, then 5 s).
    func request(
        _ path: String, _ body: [UInt8], timeoutMs: UInt64? = nil,
        done: @escaping (Result<(Int, [UInt8]), EtcdValueError>) -> Void
    ) {
        let at = endpoint
        let c = EtcdCall(
            loop: loop, endpoint: at, path: path, body: body, token: token, kind: .unary,
            dialTimeoutMs: min(settings.dialTimeoutMs, timeoutMs ?? .max),
            responseTimeoutMs: min(Self.responseTimeoutMs, timeoutMs ?? .max)
        ) { event in
            switch event {
            case .response(let status, let body): done(.success((status, body)))
            case .failed(let reason): done(.failure(EtcdValueError("etcd \(at): \(path): \(reason)")))
            case .line: break
            }
        }
        c.start(address: addresses[endpointIndex])
    }

    /// Calls `done(true)` once this instance has applied `revision` (at once if it has), or `done(false)` after
    /// `timeoutMs` or on `stop()`.
    func whenApplied(_ revision: Int64, timeoutMs: UInt64, _ done: @escaping (Bool) -> Void) {
        if set.revision >= revision { return done(true) }
        let id = nextWaiter
        nextWaiter += 1
        let timer = LoopTimer(loop: loop) { [unowned self] in self.finishWaiter(id, applied: false) }
        waiters[id] = (revision, timer, done)
        timer.start(timeout: timeoutMs)
    }

    private func finishWaiter(_ id: Int, applied: Bool) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        waiter.timer.close()
        waiter.done(applied)
    }

    /// Called after each message that may have moved `set.revision` (events, progress, a full read).
    var onRevision: (() -> Void)?

    /// Wakes the waiters whose revision is now applied.
    private func wakeWaiters() {
        onRevision?()
        for (id, waiter) in waiters where waiter.revision <= set.revision { finishWaiter(id, applied: true) }
    }

    /// Ends the current call without hearing from it again.
    private func dropCall(_ reason: String) {
        callSerial += 1
        let c = call
        call = nil
        c?.cancel(reason: reason)
    }

    // MARK: the cycle

    private func connect() {
        guard phase != .stopped else { return }
        if let username = settings.username, let password = settings.password, token == nil {
            phase = .authenticating
            send("/v3/auth/authenticate", EtcdWire.authenticateRequest(name: username, password: password)) {
                [unowned self] status, body in
                guard status == 200 else {
                    return self.failed("authenticate: HTTP \(status): \(EtcdWire.errorMessage(body))")
                }
                do { self.token = try EtcdWire.decodeToken(body) } catch {
                    return self.failed("authenticate: \(error)")
                }
                self.connect()
            }
            return
        }
        if needsFullRead || set.revision == 0 { range() } else { check() }
    }

    /// Reads the whole prefix and applies the difference; then watches from its revision + 1.
    private func range() {
        phase = .ranging
        send("/v3/kv/range", EtcdWire.rangeRequest(prefix: settings.serversPrefix)) { [unowned self] status, body in
            guard status == 200 else { return self.failed("range: HTTP \(status): \(EtcdWire.errorMessage(body))") }
            let result: EtcdWire.Range
            do { result = try EtcdWire.decodeRange(body) } catch { return self.failed("range: \(error)") }
            if self.set.revision > 0 { self.resyncs += 1 }
            let change = self.set.replace(with: result.kvs, revision: result.revision)
            self.needsFullRead = false
            self.logger.info(
                "etcd: read the server set",
                metadata: [
                    "revision": "\(result.revision)", "servers": "\(self.set.entries.count)",
                    "rejected": "\(self.set.rejected.count)", "endpoint": "\(self.endpoint)",
                ])
            self.applied(change)
            self.watch()
        }
    }

    /// Asks for etcd's current revision (a count-only range); below the applied one means a restored etcd.
    private func check() {
        phase = .checking
        send("/v3/kv/range", EtcdWire.rangeRequest(prefix: settings.serversPrefix, countOnly: true)) {
            [unowned self] status, body in
            guard status == 200 else { return self.failed("range: HTTP \(status): \(EtcdWire.errorMessage(body))") }
            let result: EtcdWire.Range
            do { result = try EtcdWire.decodeRange(body) } catch { return self.failed("range: \(error)") }
            if result.revision < self.set.revision {
                self.logger.warning(
                    "etcd: its revision went backwards (restored?); reading everything again",
                    metadata: [
                        "etcd_revision": "\(result.revision)", "applied_revision": "\(self.set.revision)",
                    ])
                self.needsFullRead = true
                self.range()
            } else {
                self.watch()
            }
        }
    }

    private func watch() {
        phase = .watching
        let body = EtcdWire.watchRequest(prefix: settings.serversPrefix, startRevision: set.revision + 1)
        callSerial += 1
        let serial = callSerial
        let c = EtcdCall(
            loop: loop, endpoint: endpoint, path: "/v3/watch", body: body, token: token, kind: .stream,
            dialTimeoutMs: settings.dialTimeoutMs, responseTimeoutMs: Self.responseTimeoutMs
        ) { [unowned self] event in
            guard serial == self.callSerial else { return }
            switch event {
            case .line(let line): self.watchLine(line)
            case .response(let status, let body): self.ended("watch: HTTP \(status): \(EtcdWire.errorMessage(body))")
            case .failed(let reason): self.ended("watch: \(reason)")
            }
        }
        call = c
        c.start(address: addresses[endpointIndex])
    }

    private func watchLine(_ line: [UInt8]) {
        let message: EtcdWire.WatchMessage
        do { message = try EtcdWire.decodeWatch(line) } catch { return stopCall("watch: \(error)") }
        switch message {
        case .created:
            // The watch runs: from here on the set is etcd's as of its last event.
            current()
        case .progress(let revision):
            set.advance(to: revision)
            current()
            wakeWaiters()
        case .events(let events, _):
            let newest = events.map(\.kv.modRevision).max() ?? set.revision
            let change = set.apply(events, revision: newest)
            current()
            applied(change)
        case .compacted(let compactRevision):
            logger.warning(
                "etcd: the revision to resume from was compacted; reading everything again",
                metadata: [
                    "compact_revision": "\(compactRevision)", "applied_revision": "\(set.revision)",
                ])
            needsFullRead = true
            dropCall("compacted")
            connect()  // the same endpoint answered: no back-off
        case .canceled(let reason):
            stopCall("watch canceled: \(reason)")
        }
    }

    // MARK: outcomes

    private func current() {
        if !isCurrent {
            logger.info("etcd: watching", metadata: ["revision": "\(set.revision)", "endpoint": "\(endpoint)"])
        }
        isCurrent = true
        staleSinceMs = nil
        lastError = nil
        consecutiveFailures = 0
    }

    private func applied(_ change: EtcdServerSet.Change) {
        defer { wakeWaiters() }
        guard !change.isEmpty else { return }
        lastAppliedRevision = set.revision
        lastChange = change
        apply(set, change)
        lastAppliedAt = Date()
    }

    /// The watch call ended by itself.
    private func ended(_ reason: String) {
        call = nil
        failed(reason)
    }

    /// Ends the running call and fails with `reason`.
    private func stopCall(_ reason: String) {
        dropCall(reason)
        failed(reason)
    }

    /// Marks the set stale, moves to the next endpoint and schedules the next attempt.
    private func failed(_ reason: String) {
        guard phase != .stopped else { return }
        if isCurrent || lastError == nil {
            logger.warning(
                "etcd: lost contact; routing stays as it is",
                metadata: [
                    "endpoint": "\(endpoint)", "error": "\(reason)",
                ])
        }
        isCurrent = false
        if staleSinceMs == nil { staleSinceMs = loop.now }
        lastError = "\(endpoint): \(reason)"
        failures += 1
        consecutiveFailures += 1
        // A token may have expired: ask for a new one on the next connection.
        token = nil
        endpointIndex = (endpointIndex + 1) % addresses.count
        phase = .waiting
        let delay = Self.retryDelay(consecutiveFailures: consecutiveFailures, endpoints: addresses.count)
        if retryTimer == nil { retryTimer = LoopTimer(loop: loop) { [unowned self] in self.connect() } }
        retryTimer?.start(timeout: delay)
    }

    /// While endpoints of this round are untried: 0-20 ms. After each full round: base × 2^(rounds-1), capped,
    /// then jittered to 50-100 % of that, so instances that lost etcd together do not return in step.
    static func retryDelay(consecutiveFailures n: Int, endpoints: Int) -> UInt64 {
        if n % endpoints != 0 { return UInt64.random(in: 0...20) }
        let rounds = min(n / endpoints, 16)
        let full = min(backoffBaseMs << UInt64(rounds - 1), backoffCapMs)
        return UInt64.random(in: full / 2...full)
    }

    /// One unary call to the current endpoint; `done` gets the status and body, failures go to `failed`.
    private func send(_ path: String, _ body: [UInt8], done: @escaping (Int, [UInt8]) -> Void) {
        callSerial += 1
        let serial = callSerial
        let c = EtcdCall(
            loop: loop, endpoint: endpoint, path: path, body: body, token: token, kind: .unary,
            dialTimeoutMs: settings.dialTimeoutMs, responseTimeoutMs: Self.responseTimeoutMs
        ) { [unowned self] event in
            guard serial == self.callSerial else { return }
            self.call = nil
            switch event {
            case .response(let status, let body): done(status, body)
            case .failed(let reason): self.failed("\(path): \(reason)")
            case .line: break
            }
        }
        call = c
        c.start(address: addresses[endpointIndex])
    }
}

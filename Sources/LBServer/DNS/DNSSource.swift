import Foundation
import LBCore
import LBDNS
import LBUV
import Logging

/// Keeps the server set in step with DNS: resolves the name, hands each outcome to `DNSRefresh` and carries out
/// its decision (publish, log, schedule the next query). Control loop only; every query goes through the
/// loop-driven c-ares channel of `DNSResolver`, so neither the control loop nor any worker ever blocks on DNS,
/// and the data path routes with the last published set throughout.
///
/// One resolution at a time: A/AAAA (both for `family: any`), or SRV, then the addresses of the targets the
/// additional section does not give. A resolution is one outcome: any transient failure among its queries
/// (SERVFAIL, timeout, ...) fails it whole, so a flaky lookup of one target never shrinks the set.
final class DNSSource {
    let settings: LBConfig.DNS
    private let loop: EventLoop
    private let logger: Logger
    private let resolver: DNSResolver
    private let apply: ([ServerSpec]) -> Void
    private var refresh: DNSRefresh
    private var timer: LoopTimer?
    private var stopped = false

    /// Resolutions started, and their outcomes: answers with servers, failures by kind (NXDOMAIN included).
    private(set) var resolutions = 0
    private(set) var answers = 0
    private(set) var failures: [DNSFailureKind: Int] = [:]
    /// Wall-clock and loop time of the last answer with servers, and its smallest TTL (seconds).
    private(set) var lastAnswerAt: Date?
    private(set) var lastAnswerMs: UInt64?
    private(set) var lastTTLSeconds: UInt32?
    /// Loop time the next query is due; nil while one is in flight.
    private(set) var nextQueryAtMs: UInt64?
    private(set) var lastError: String?
    /// Targets of the last SRV answer whose addresses could not be found (NXDOMAIN or no record).
    private(set) var unresolvedTargets: [String] = []

    /// Throws `SetupError` when c-ares cannot start with the configured resolvers.
    init(settings: LBConfig.DNS, loop: EventLoop, logger: Logger, apply: @escaping ([ServerSpec]) -> Void) throws {
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.apply = apply
        resolver = try DNSResolver(
            loop: loop, servers: settings.resolvers.map(\.description), timeoutMs: settings.timeoutMs)
        refresh = DNSRefresh(
            settings: .init(
                minTTLMs: settings.minTTLMs, maxTTLMs: settings.maxTTLMs, nxdomainHoldMs: settings.nxdomainHoldMs))
    }

    /// The source's state for the admin API: `resolving` before the first outcome, `ok`, `failing` (the last
    /// resolution failed and the set in force stays), `nxdomain_hold` or `nxdomain` (the set was emptied).
    var state: String {
        guard let failing = refresh.failing else { return refresh.current == nil ? "resolving" : "ok" }
        if failing == .nxdomain { return refresh.current?.isEmpty == false ? "nxdomain_hold" : "nxdomain" }
        return "failing"
    }

    var consecutiveFailures: Int { refresh.consecutiveFailures }
    var nxdomainSinceMs: UInt64? { refresh.nxdomainSinceMs }

    func start() {
        timer = LoopTimer(loop: loop) { [unowned self] in self.resolve() }
        resolve()
    }

    /// Cancels the query in flight and the next one. Idempotent.
    func stop() {
        stopped = true
        timer?.close()
        timer = nil
        resolver.close()
    }

    // MARK: one resolution

    private func resolve() {
        guard !stopped else { return }
        resolutions += 1
        nextQueryAtMs = nil
        if settings.isSRV {
            resolveSRV()
        } else {
            lookUpAddresses(of: settings.name) { [unowned self] result in
                switch result {
                case .failure(let error):
                    self.finish(.failure(error.kind, error.detail))
                case .success(let found):
                    let servers = DNSServerSet.servers(addresses: found.addresses, port: self.settings.port ?? 0)
                    self.finish(.answer(servers, ttlSeconds: found.ttl))
                }
            }
        }
    }

    private func resolveSRV() {
        resolver.query(settings.name, .srv) { [unowned self] result in
            let message: DNSMessage
            switch result {
            case .failure(let error): return self.finish(.failure(error.kind, error.detail))
            case .success(let m): message = m
            }
            var targets: [DNSServerSet.Target] = []
            var ttl = UInt32.max
            for record in message.answers {
                ttl = min(ttl, record.ttl)
                if case .srv(let priority, let weight, let port, let host) = record.data {
                    targets.append(.init(priority: priority, weight: weight, port: port, host: host))
                }
            }
            guard !targets.isEmpty else {
                return self.finish(.failure(.noData, "SRV \(self.settings.name): the answer has no SRV record"))
            }
            // Addresses the server volunteered in the additional section (RFC 2782), for the targets we have.
            var addresses: [String: [String]] = [:]
            let hosts = Set(targets.map(\.host)).subtracting(["", "."])
            for record in message.additional where hosts.contains(record.name) && self.wanted(record) {
                addresses[record.name, default: []].append(record.address!)
                ttl = min(ttl, record.ttl)
            }
            let missing = hosts.filter { addresses[$0] == nil }.sorted()
            guard !missing.isEmpty else { return self.finishSRV(targets, addresses, ttl: ttl, unresolved: []) }
            var left = missing.count
            var transient: DNSQueryError?
            var unresolved: [String] = []
            for host in missing {
                self.lookUpAddresses(of: host) { [unowned self] result in
                    switch result {
                    case .success(let found):
                        addresses[host] = found.addresses
                        ttl = min(ttl, found.ttl)
                    case .failure(let error) where error.kind == .nxdomain || error.kind == .noData:
                        unresolved.append(host)
                    case .failure(let error):
                        transient = transient ?? error
                    }
                    left -= 1
                    guard left == 0 else { return }
                    if let transient { return self.finish(.failure(transient.kind, transient.detail)) }
                    self.finishSRV(targets, addresses, ttl: ttl, unresolved: unresolved.sorted())
                }
            }
        }
    }

    private func finishSRV(
        _ targets: [DNSServerSet.Target], _ addresses: [String: [String]], ttl: UInt32, unresolved: [String]
    ) {
        unresolvedTargets = unresolved
        let servers = DNSServerSet.servers(targets: targets, addresses: addresses)
        finish(.answer(servers, ttlSeconds: ttl))
    }

    /// True for an address record of a family the settings ask for.
    private func wanted(_ record: DNSRecord) -> Bool {
        switch record.data {
        case .a: settings.family != .ipv6
        case .aaaa: settings.family != .ipv4
        default: false
        }
    }

    private struct Found {
        var addresses: [String]
        var ttl: UInt32
    }

    /// The addresses of `name` in the families asked for (A and AAAA in parallel for `any`), with the smallest
    /// TTL of the records that led to them (CNAMEs included). Fails with a transient failure if either query
    /// had one; with NXDOMAIN when every query said so; with no data when no address came back.
    private func lookUpAddresses(of name: String, done: @escaping (Result<Found, DNSQueryError>) -> Void) {
        let types: [DNSQueryType] =
            switch settings.family {
            case .any: [.a, .aaaa]
            case .ipv4: [.a]
            case .ipv6: [.aaaa]
            }
        var left = types.count
        var found = Found(addresses: [], ttl: .max)
        var errors: [DNSQueryError] = []
        for type in types {
            resolver.query(name, type) { [unowned self] result in
                switch result {
                case .success(let message):
                    for record in message.answers {
                        found.ttl = min(found.ttl, record.ttl)
                        if self.wanted(record) { found.addresses.append(record.address!) }
                    }
                case .failure(let error):
                    errors.append(error)
                }
                left -= 1
                guard left == 0 else { return }
                if let transient = errors.first(where: { $0.kind != .nxdomain && $0.kind != .noData }) {
                    return done(.failure(transient))
                }
                if !found.addresses.isEmpty { return done(.success(found)) }
                if errors.count == types.count, errors.allSatisfy({ $0.kind == .nxdomain }) {
                    return done(.failure(errors[0]))
                }
                done(.failure(DNSQueryError(.noData, "\(name): no address record in the answer")))
            }
        }
    }

    // MARK: outcomes

    private func finish(_ outcome: DNSRefresh.Outcome) {
        guard !stopped else { return }
        let now = loop.now
        let decision = refresh.resolved(outcome, now: now)
        switch outcome {
        case .answer(let servers, let ttl) where !servers.isEmpty:
            answers += 1
            lastAnswerAt = Date()
            lastAnswerMs = now
            lastTTLSeconds = ttl
            lastError = nil
        case .answer:
            failures[.noData, default: 0] += 1
            lastError = "no_data: \(settings.name): the answer has records but none with a usable address"
        case .failure(let kind, let detail):
            failures[kind, default: 0] += 1
            lastError = "\(kind.rawValue): \(detail)"
        }
        log(decision.log, servers: decision.publish)
        if let servers = decision.publish { apply(servers) }
        nextQueryAtMs = now + decision.nextQueryInMs
        timer?.start(timeout: decision.nextQueryInMs)
    }

    private func log(_ event: DNSRefresh.Log?, servers: [ServerSpec]?) {
        let name = settings.name
        switch event {
        case nil: break
        case .answered(let after)?:
            var metadata: Logger.Metadata = ["name": "\(name)", "servers": "\(refresh.current?.count ?? 0)"]
            if let after { metadata["after"] = "\(after.rawValue)" }
            logger.info(after == nil ? "dns: first answer" : "dns: answering again", metadata: metadata)
        case .failing(let kind, let detail)?:
            logger.warning(
                "dns: resolution failing; routing stays as it is",
                metadata: [
                    "name": "\(name)", "kind": "\(kind.rawValue)", "error": "\(detail)",
                    "servers_kept": "\(refresh.current?.count ?? 0)",
                ])
        case .nxdomainHeld(let until)?:
            logger.warning(
                "dns: the name does not exist (NXDOMAIN); keeping the last set until the hold ends",
                metadata: ["name": "\(name)", "hold_ms": "\(until - loop.now)"])
        case .nxdomainEmptied?:
            logger.error(
                "dns: the name still does not exist after the hold; routing to no server",
                metadata: ["name": "\(name)"])
        }
    }
}

import Foundation
import LBUV
import Logging

/// This instance's entry under `/lb/<cluster>/instances/<id>`, attached to a lease so that it disappears when
/// the instance stops renewing it (killed, or cut off from etcd for longer than the lease). Its value says which
/// etcd revision the instance has applied, so `/api/cluster` lists the live instances and how current each is.
/// Control loop only; every call goes through `EtcdSource.request`.
///
/// Every third of the TTL: grant a lease if there is none, write the entry if it changed, else renew. A renewal
/// that finds the lease gone (TTL 0) grants a new one and writes the entry again. A failed call is retried at
/// the next tick; the lease outlives a tick or two of etcd being away.
final class EtcdRegistration {
    let instanceID: String
    let key: String
    private let source: EtcdSource
    private let ttlSeconds: Int
    private let logger: Logger
    /// The entry's JSON for the state now.
    private let value: () -> [UInt8]
    private var leaseID: String?
    private var written: [UInt8]?
    private var busy = false
    private var stopped = false
    private var timer: LoopTimer?
    /// Coalesces the writes that applied changes ask for: at most one per `coalesceMs`.
    private var soon: LoopTimer?
    private var soonArmed = false
    static let coalesceMs: UInt64 = 250

    init(
        source: EtcdSource, instanceID: String, ttlSeconds: Int, loop: EventLoop, logger: Logger,
        value: @escaping () -> [UInt8]
    ) {
        self.source = source
        self.instanceID = instanceID
        key = source.settings.instancesPrefix + instanceID
        self.ttlSeconds = ttlSeconds
        self.logger = logger
        self.value = value
        let t = LoopTimer(loop: loop) { [unowned self] in self.tick() }
        timer = t
        t.start(timeout: 0, repeat: UInt64(ttlSeconds) * 1000 / 3)
        soon = LoopTimer(loop: loop) { [unowned self] in
            self.soonArmed = false
            self.tick()
        }
    }

    /// The applied revision moved: write the entry shortly rather than at the next tick. Changes in quick
    /// succession make one write, so registrations add little to etcd's load while the servers change.
    func changed() {
        guard !stopped, !soonArmed else { return }
        soonArmed = true
        soon?.start(timeout: Self.coalesceMs)
    }

    /// Stops renewing. With `revoke`, also revokes the lease, so the entry goes now rather than when the lease
    /// expires; the call is given one second, and nothing waits for it but the loop's own exit.
    func stop(revoke: Bool = false) {
        stopped = true
        timer?.close()
        timer = nil
        soon?.close()
        soon = nil
        guard revoke, let lease = leaseID else { return }
        leaseID = nil
        source.request("/v3/lease/revoke", EtcdWire.leaseKeepAliveRequest(id: lease), timeoutMs: 1_000) {
            [logger, key] result in
            if case .success((200, _)) = result {
                logger.info("etcd: unregistered this instance", metadata: ["key": "\(key)"])
            }
        }
    }

    private func tick() {
        guard !stopped, !busy else { return }
        guard let lease = leaseID else { return grant() }
        let now = value()
        if now != written { return put(now, lease: lease) }
        busy = true
        source.request("/v3/lease/keepalive", EtcdWire.leaseKeepAliveRequest(id: lease)) { [weak self] result in
            guard let self else { return }
            self.busy = false
            guard case .success((200, let body)) = result, let renewed = try? EtcdWire.decodeLease(body) else { return }
            if renewed.ttl <= 0 {
                self.logger.warning(
                    "etcd: this instance's lease expired; registering again", metadata: ["key": "\(self.key)"])
                self.leaseID = nil
                self.written = nil
                self.grant()
            }
        }
    }

    private func grant() {
        busy = true
        source.request("/v3/lease/grant", EtcdWire.leaseGrantRequest(ttlSeconds: ttlSeconds)) { [weak self] result in
            guard let self else { return }
            self.busy = false
            guard case .success((200, let body)) = result, let lease = try? EtcdWire.decodeLease(body) else { return }
            self.leaseID = lease.id
            self.put(self.value(), lease: lease.id)
        }
    }

    private func put(_ entry: [UInt8], lease: String) {
        guard !stopped else { return }
        busy = true
        source.request("/v3/kv/put", EtcdWire.putRequest(key: key, value: entry, lease: lease)) { [weak self] result in
            guard let self else { return }
            self.busy = false
            switch result {
            case .success((200, _)):
                if self.written == nil {
                    self.logger.info(
                        "etcd: registered this instance", metadata: ["key": "\(self.key)", "lease": "\(lease)"])
                }
                self.written = entry
                // The state may have moved on while the write was out.
                if self.value() != entry { self.tick() }
            case .success((_, let body)) where EtcdWire.errorMessage(body).contains("lease not found"):
                self.leaseID = nil
                self.written = nil
            default:
                break
            }
        }
    }
}

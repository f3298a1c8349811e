import LBCore

/// The server set as etcd holds it: one key per server under the cluster's servers prefix, its value the server
/// as JSON with the keys `POST /manage/servers` takes (`id`, `host`, `port`, `weight`). Pure state, no I/O:
/// the watcher feeds it a full range or a batch of watch events and publishes `servers` when they changed.
///
/// The set is a function of etcd's contents alone, so every lb instance that has applied the same revision
/// routes the same way. A key whose value is not a valid server (bad JSON, unknown keys, an `id` that is not the
/// key's last segment) is no server at all: it is skipped whole, listed in `rejected` with the reason and
/// counted in `rejectedTotal`; it never changes part of a server.
struct EtcdServerSet {
    struct Entry: Equatable {
        var spec: ServerSpec
        /// The key's `mod_revision`: what an admin write compares against.
        var modRevision: Int64
    }

    /// What a range or a batch changed.
    struct Change: Equatable {
        var added: [String] = []
        var removed: [String] = []
        var updated: [String] = []
        var isEmpty: Bool { added.isEmpty && removed.isEmpty && updated.isEmpty }
    }

    let prefix: String
    /// Servers by id.
    private(set) var entries: [String: Entry] = [:]
    /// Keys whose value was rejected, with the reason, as of the last revision applied.
    private(set) var rejected: [String: String] = [:]
    /// Values rejected since start (each put of a bad value counts once).
    private(set) var rejectedTotal = 0
    /// The etcd revision this set reflects; 0 before the first range.
    private(set) var revision: Int64 = 0

    init(prefix: String) { self.prefix = prefix }

    /// The servers in id order, as the routing state wants them.
    var servers: [ServerSpec] { entries.values.map(\.spec).sorted() }

    /// Replaces everything with a full read of the prefix at `revision` (bootstrap, or a resync after
    /// compaction or a restored etcd) and returns only what differs from before.
    mutating func replace(with kvs: [EtcdWire.KeyValue], revision: Int64) -> Change {
        let before = entries
        entries = [:]
        rejected = [:]
        for kv in kvs { put(kv) }
        self.revision = revision
        return Self.difference(before, entries)
    }

    /// Applies watch events in order; `revision` is the newest revision they bring (or the message's header).
    mutating func apply(_ events: [EtcdWire.Event], revision: Int64) -> Change {
        let before = entries
        for event in events {
            switch event.kind {
            case .put: put(event.kv)
            case .delete:
                guard let id = id(of: event.kv.key) else { continue }
                entries[id] = nil
                rejected[event.kv.key] = nil
            }
        }
        self.revision = max(self.revision, revision)
        return Self.difference(before, entries)
    }

    /// Records that etcd has sent everything up to `revision` (a progress notification).
    mutating func advance(to revision: Int64) { self.revision = max(self.revision, revision) }

    /// True when `id` can be the last segment of a server's key.
    static func validID(_ id: String) -> Bool { !id.isEmpty && !id.contains("/") }

    /// The server id a key names, or nil for a key that is not directly under the prefix.
    func id(of key: String) -> String? {
        guard key.hasPrefix(prefix) else { return nil }
        let id = String(key.dropFirst(prefix.count))
        return Self.validID(id) ? id : nil
    }

    /// Why `value` under `key` is not a server, or the server.
    static func decode(key id: String, value: [UInt8]) -> Result<ServerSpec, EtcdValueError> {
        do {
            let spec = try AdminJSON.addServer(value)
            guard spec.id == id else {
                return .failure(
                    EtcdValueError(
                        "its id \(quoted(spec.id)) is not the key's \(quoted(id)) (give \"id\": \(quoted(id)))"))
            }
            return .success(spec)
        } catch {
            return .failure(EtcdValueError(error.field.map { "\($0): \(error.message)" } ?? error.message))
        }
    }

    private mutating func put(_ kv: EtcdWire.KeyValue) {
        guard let id = id(of: kv.key) else { return }
        switch Self.decode(key: id, value: kv.value) {
        case .success(let spec):
            entries[id] = Entry(spec: spec, modRevision: kv.modRevision)
            rejected[kv.key] = nil
        case .failure(let error):
            entries[id] = nil
            rejected[kv.key] = error.message
            rejectedTotal += 1
        }
    }

    private static func difference(_ before: [String: Entry], _ after: [String: Entry]) -> Change {
        var change = Change()
        for (id, entry) in after {
            if let old = before[id] {
                if old.spec != entry.spec { change.updated.append(id) }
            } else {
                change.added.append(id)
            }
        }
        change.removed = before.keys.filter { after[$0] == nil }
        change.added.sort()
        change.updated.sort()
        change.removed.sort()
        return change
    }
}

struct EtcdValueError: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}

import Foundation
import LBCore
import LBHTTP

/// The management calls with etcd as the source: `POST`, `PATCH` and `DELETE /manage/servers` take the same bodies
/// as with a static source, but the change is written to etcd, not applied here. Control loop only.
///
/// Each call validates completely and builds the would-be routing state from this instance's copy of etcd's set
/// (400 and 404 as today; `?dry_run=1` stops there and answers as today). Then one etcd transaction writes the
/// server's key if it is as this instance last saw it: absent for an add, unchanged since its `mod_revision` for
/// a change or a delete. Another instance's write in between makes the comparison fail: 409, nothing written, so
/// two instances never clobber each other. A committed write takes effect when the watch delivers it, the same
/// way on every instance; the answer waits until this instance has applied it (201 or 200 as today), or says 202
/// when that takes longer than `applyWaitMs`. With etcd unreachable (no running watch, or the transaction fails)
/// the answer is 503 naming the cause, and nothing changes.
extension AdminServer {
    static let applyWaitMs: UInt64 = 5_000

    func manageThroughEtcd(
        _ source: EtcdSource, route: AdminRoute, method: HTTPMethod, body: [UInt8], query: ManageQuery,
        reply: @escaping (AdminResponse) -> Void
    ) throws(AdminError) {
        let current = source.set
        var next = server.config
        let key: String
        let id: String
        let value: [UInt8]?
        let precondition: EtcdWire.Precondition
        let status: Int
        switch route {
        case .manageServers:
            let spec = try AdminJSON.addServer(body)
            guard EtcdServerSet.validID(spec.id) else {
                throw AdminError(400, field: "id", "\(quoted(spec.id)) cannot be an etcd key segment (no '/')")
            }
            if current.entries[spec.id] != nil {
                throw AdminError(409, field: "id", "\(quoted(spec.id)) is already in use")
            }
            (id, value, precondition, status) = (spec.id, Self.etcdValue(spec), .absent, 201)
            next.servers = current.servers + [spec]
        case .manageServer(let given) where method == .patch:
            guard let entry = current.entries[given] else { throw unknown(given) }
            let patch = try AdminJSON.patchServer(body)
            if patch.state != nil {
                throw AdminError(
                    400, field: "state",
                    "drains are kept by each instance and are not shared through etcd; set \"weight\": 0 to give "
                        + "the server no new keys on every instance")
            }
            var spec = entry.spec
            spec.weight = patch.weight ?? spec.weight
            (id, value, precondition, status) = (given, Self.etcdValue(spec), .modRevision(entry.modRevision), 200)
            next.servers = current.servers.map { $0.id == given ? spec : $0 }
        case .manageServer(let given):
            guard let entry = current.entries[given] else { throw unknown(given) }
            (id, value, precondition, status) = (given, nil, .modRevision(entry.modRevision), 200)
            next.servers = current.servers.filter { $0.id != given }
        default:
            throw AdminError(404, "no such endpoint")
        }
        key = source.settings.serversPrefix + id
        let previous = server.routing.load()
        let state = try prepare(next, newHost: route == .manageServers)
        let moved = previous.movedFraction(to: state)
        let methodName = method.token
        if query.dryRun {
            record(methodName, id: id, moved: moved, query: query)
            var view = serverJSON(id, in: value == nil ? previous : state)
            view["key"] = key
            return reply(answer(200, view, moved: moved, query: query))
        }
        source.write(key: key, precondition: precondition, value: value) { [weak self] outcome in
            guard let self else { return }
            switch outcome {
            case .conflict:
                let what = route == .manageServers ? "was added" : "was changed"
                reply(
                    AdminError(
                        409, field: "id",
                        "not changed: \(quoted(id)) \(what) through etcd meanwhile (by "
                            + "another instance or client); read it again and retry"
                    ).response)
            case .unavailable(let cause):
                reply(AdminError(503, "not changed: \(cause)").response)
            case .committed(let revision):
                self.record(methodName, id: id, moved: moved, query: query)
                source.whenApplied(revision, timeoutMs: Self.applyWaitMs) { [weak self] applied in
                    guard let self else { return }
                    let now = self.server.routing.load()
                    var view = value == nil ? ["id": id, "state": "removed"] : self.serverJSON(id, in: now)
                    view["key"] = key
                    view["revision"] = revision
                    reply(self.answer(applied ? status : 202, view, moved: moved, query: query))
                }
            }
        }
    }

    static let noCluster = AdminError(404, "no cluster: the servers come from the config (server_source.type static)")

    /// `GET /api/cluster`: the live instances of this etcd cluster (their lease-held entries), read from etcd now,
    /// each as it registered itself (`id`, `admin`, `pid`, the `revision` it has applied, …), in id order, and
    /// which one is this instance. 503 when etcd cannot be read; 404 with a static source.
    func clusterJSON(reply: @escaping (AdminResponse) -> Void) {
        guard let source = server.etcdSource else { return reply(Self.noCluster.response) }
        let prefix = source.settings.instancesPrefix
        let me = server.etcdRegistration?.instanceID
        source.request("/v3/kv/range", EtcdWire.rangeRequest(prefix: prefix)) { [weak self] result in
            guard let self else { return }
            let range: EtcdWire.Range
            switch result {
            case .success((200, let body)):
                do { range = try EtcdWire.decodeRange(body) } catch {
                    return reply(AdminError(503, "etcd: \(error)").response)
                }
            case .success((let status, let body)):
                return reply(AdminError(503, "etcd: HTTP \(status): \(EtcdWire.errorMessage(body))").response)
            case .failure(let error):
                return reply(AdminError(503, error.message).response)
            }
            let instances: [[String: Any]] = range.kvs.sorted { $0.key < $1.key }.map { kv in
                var entry = (try? JSONSerialization.jsonObject(with: Data(kv.value))) as? [String: Any] ?? [:]
                entry["id"] = entry["id"] ?? String(kv.key.dropFirst(prefix.count))
                return entry
            }
            var object: [String: Any] = [
                "cluster": source.settings.cluster, "revision": range.revision, "instances": instances,
            ]
            if let me { object["self"] = me }
            reply(AdminResponse(status: 200, body: self.json(object)))
        }
    }

    /// A server as its etcd value: the keys `POST /manage/servers` takes.
    static func etcdValue(_ spec: ServerSpec) -> [UInt8] {
        let object: [String: Any] = ["id": spec.id, "host": spec.host, "port": spec.port, "weight": spec.weight]
        return Array(AdminJSON.text(object).utf8)
    }
}

import LBCore
import LBUV
import Logging

/// The management calls: add, change and remove servers. Control loop only.
///
/// Each call validates completely, builds the would-be routing state with `ProxyServer.prepare`, measures the
/// keyspace that moves (`RoutingState.movedFraction`), and only then, unless `?dry_run=1`, publishes it through
/// `ProxyServer.publish` (which also updates `config.servers`, so a later reload diff and `/api/servers` agree).
/// Any rejection leaves routing, flags and config untouched. With a state file, the change is written to it
/// before it is published; a failed write is a 500 and changes nothing.
///
/// Draining flips the server's atomic flag and does not rebuild the table: the server keeps its ring points
/// and weight, lookups walk past it (as for a down server), and `moved_fraction` is the share of keys it was
/// serving, which is exactly the set that moves. `state: "up"` flips it back and those keys return. No new
/// snapshot is published for a drain alone, so `generation` stays.
extension AdminServer {
    /// `POST /manage/servers`: 201 with the new server, or 200 for a dry run. 409 when the id is taken.
    func addServer(body: [UInt8], query: ManageQuery) throws(AdminError) -> AdminResponse {
        let spec = try AdminJSON.addServer(body)
        if server.config.servers.contains(where: { $0.id == spec.id }) {
            throw AdminError(409, field: "id", "\(quoted(spec.id)) is already in use")
        }
        var next = server.config
        next.servers.append(spec)
        let state = try prepare(next, newHost: true)
        let moved = server.routing.load().movedFraction(to: state)
        let view = serverJSON(spec.id, in: state)
        if !query.dryRun {
            try persist(next.servers, draining: drainedIDs)
            server.publish(state, config: next, reason: "admin add \(spec.id)", movedFraction: moved)
        }
        record("POST", id: spec.id, moved: moved, query: query)
        return answer(query.dryRun ? 200 : 201, view, moved: moved, query: query)
    }

    /// `PATCH /manage/servers/{id}`: a new weight (rebuild and publish) and/or a drain flag flip. 404 when
    /// the id is unknown.
    func patchServer(id: String, body: [UInt8], query: ManageQuery) throws(AdminError) -> AdminResponse {
        guard let index = server.config.servers.firstIndex(where: { $0.id == id }),
            let backend = server.routing.load().backend(id: id)
        else { throw unknown(id) }
        let patch = try AdminJSON.patchServer(body)
        let previous = server.routing.load()
        var next = server.config
        var state = previous
        if let weight = patch.weight, weight != next.servers[index].weight {
            next.servers[index].weight = weight
            state = try prepare(next, newHost: false)
        }
        let draining = patch.state.map { $0 == .draining } ?? backend.isDraining
        let moved = previous.movedFraction(to: state) { b in
            b.spec.id == id ? b.isUp && !draining && !b.isRemoved : b.isEligible
        }
        let view = serverJSON(id, in: state, draining: draining)
        if !query.dryRun {
            var drained = drainedIDs
            if draining { drained.insert(id) } else { drained.remove(id) }
            try persist(next.servers, draining: drained)
            // Flag first: a server being drained and reweighted at once never gets the new weight's keys.
            backend.setDraining(draining)
            if state !== previous {
                server.publish(state, config: next, reason: "admin patch \(id)", movedFraction: moved)
            }
        }
        record("PATCH", id: id, moved: moved, query: query)
        return answer(200, view, moved: moved, query: query)
    }

    /// `DELETE /manage/servers/{id}`: the server leaves the routing state at once (no new requests), its
    /// in-flight requests finish, its idle pooled connections close. 404 when the id is unknown.
    func deleteServer(id: String, query: ManageQuery) throws(AdminError) -> AdminResponse {
        guard server.config.servers.contains(where: { $0.id == id }) else { throw unknown(id) }
        var next = server.config
        next.servers.removeAll { $0.id == id }
        let previous = server.routing.load()
        let state = try prepare(next, newHost: false)
        let moved = previous.movedFraction(to: state)
        var view = serverJSON(id, in: previous)
        if !query.dryRun {
            try persist(next.servers, draining: drainedIDs.subtracting([id]))
            server.publish(state, config: next, reason: "admin delete \(id)", movedFraction: moved)
            view["state"] = "removed"
        }
        record("DELETE", id: id, moved: moved, query: query)
        return answer(200, view, moved: moved, query: query)
    }

    // MARK: helpers

    /// `ProxyServer.prepare` with its errors mapped to 400s: an unresolvable host names `host`, a routing
    /// limit (e.g. too many ring points for this weight) names `weight`.
    func prepare(_ next: LBConfig, newHost: Bool) throws(AdminError) -> RoutingState {
        do {
            return try server.prepare(next)
        } catch let error as SetupError {
            throw AdminError(400, field: newHost ? "host" : nil, error.description)
        } catch let error as RoutingError {
            throw AdminError(400, field: "weight", error.description)
        } catch {
            throw AdminError(400, "\(error)")
        }
    }

    /// With a state file, writes the runtime changes that `servers` with `draining` drained make, before the
    /// change is published: a change that was answered is on disk. A failed write is a 500 and nothing changes.
    /// Dry runs never call this.
    private func persist(_ servers: [ServerSpec], draining: Set<String>) throws(AdminError) {
        guard let store = server.stateFile else { return }
        do {
            try store.write(RuntimeChanges(from: server.configServers, to: servers, draining: draining))
        } catch {
            throw AdminError(500, "not changed: the state file could not be written: \(error.message)")
        }
    }

    /// Ids of the servers drained now.
    private var drainedIDs: Set<String> {
        Set(server.routing.load().backends.filter(\.isDraining).map(\.spec.id))
    }

    func unknown(_ id: String) -> AdminError {
        AdminError(404, field: "id", "no server with id \(quoted(id))")
    }

    func serverJSON(_ id: String, in state: RoutingState, draining: Bool? = nil) -> [String: Any] {
        serversJSON(state, draining: draining.map { (id, $0) }, only: id).first ?? ["id": id]
    }

    func answer(_ status: Int, _ view: [String: Any], moved: Double, query: ManageQuery) -> AdminResponse {
        let object: [String: Any] = [
            "server": view, "moved_fraction": moved, "dry_run": query.dryRun,
            "generation": server.routing.load().generation,
        ]
        return AdminResponse(status: status, body: json(object))
    }

    /// Every change is logged at info; dry runs at debug.
    func record(_ method: String, id: String, moved: Double, query: ManageQuery) {
        let metadata: Logger.Metadata = [
            "method": "\(method)", "id": "\(id)", "moved_fraction": "\(moved)", "dry_run": "\(query.dryRun)",
        ]
        if query.dryRun {
            server.logger.debug("admin dry run", metadata: metadata)
        } else {
            server.logger.info("admin change", metadata: metadata)
        }
    }
}

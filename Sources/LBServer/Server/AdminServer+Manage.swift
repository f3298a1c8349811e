import LBCore
import LBHTTP
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
    /// A management call planned on the control loop: the config it makes, the routing state it starts from,
    /// and what to do once the new state is built and measured on the control-work thread.
    struct ManagePlan {
        var next: LBConfig
        var previous: RoutingState
        /// False: the routing state stays `previous` (a drain flag alone changes).
        var rebuild: Bool
        /// A build failure names `host` (a new server's address did not resolve).
        var newHost: Bool
        /// Which servers serve after the change, for `moved_fraction`; nil: those eligible now. Runs on the
        /// control-work thread: it may read only what it captured and the servers' atomic flags.
        var eligibleNext: ((Backend) -> Bool)?
        /// Applies the change (a dry run only describes it) and answers; control loop.
        var finish: (_ state: RoutingState, _ moved: Double) throws(AdminError) -> AdminResponse
    }

    /// `POST /manage/servers`, `PATCH` and `DELETE /manage/servers/{id}` with the static source. Calls run one at
    /// a time in arrival order with reloads (`ProxyServer.serializeChange`), each planned from what the previous
    /// one left. The table build (and a new host's
    /// lookup) and the moved-keys measurement run on the control-work thread, so neither the control loop nor,
    /// at its lower priority, a busy worker waits for a 1,000-server rebuild.
    func manage(
        route: AdminRoute, method: HTTPMethod, body: [UInt8], query: String, authorization: String?,
        reply: @escaping (AdminResponse) -> Void
    ) {
        server.serializeChange { [weak self] done in
            guard let self else { return done() }
            runManage(route: route, method: method, body: body, query: query, authorization: authorization, attempt: 1) {
                reply($0)
                done()
            }
        }
    }

    /// What the synchronous handler answers for a server change it is never given (it cannot answer later).
    static let changesAnswerLater = AdminError(500, "internal: a server change reached the synchronous handler")

    /// Attempts before a call that keeps finding the servers changed under it (reloads) answers 409.
    static let manageAttempts = 3

    private func runManage(
        route: AdminRoute, method: HTTPMethod, body: [UInt8], query: String, authorization: String?, attempt: Int,
        reply: @escaping (AdminResponse) -> Void
    ) {
        let plan: ManagePlan
        do throws(AdminError) {
            try AdminAuth.check(authorization, token: server.config.admin.token)
            let q = try ManageQuery(parsing: query)
            switch route {
            case .manageServer(let id) where method == .delete: plan = try deletePlan(id: id, query: q)
            case .manageServer(let id): plan = try patchPlan(id: id, body: body, query: q)
            default: plan = try addPlan(body: body, query: q)
            }
        } catch {
            return reply(error.response)
        }
        let workers = server.workerCount
        server.offLoop({ () -> Result<(RoutingState, Double), AdminError> in
            do {
                let state =
                    plan.rebuild
                    ? try ProxyServer.buildState(
                        config: plan.next, previous: plan.previous, workers: workers,
                        generation: plan.previous.generation + 1)
                    : plan.previous
                let moved =
                    plan.eligibleNext.map { plan.previous.movedFraction(to: state, eligibleNext: $0) }
                    ?? plan.previous.movedFraction(to: state)
                _ = state.snapshot.keyspaceShares()  // the answer shows them; computed here, once per snapshot
                return .success((state, moved))
            } catch {
                return .failure(AdminServer.buildError(error, newHost: plan.newHost))
            }
        }, then: { [weak self] result in
            guard let self else { return }
            if server.routing.load() !== plan.previous {
                // Something else published meanwhile (a reload): plan again from what runs now.
                guard attempt < Self.manageAttempts else {
                    return reply(AdminError(409, "not changed: the servers kept changing meanwhile; retry").response)
                }
                return runManage(
                    route: route, method: method, body: body, query: query, authorization: authorization,
                    attempt: attempt + 1, reply: reply)
            }
            do throws(AdminError) {
                let (state, moved) = try result.get()
                reply(try plan.finish(state, moved))
            } catch {
                reply(error.response)
            }
        })
    }

    /// `POST /manage/servers`: 201 with the new server, or 200 for a dry run. 409 when the id is taken.
    private func addPlan(body: [UInt8], query: ManageQuery) throws(AdminError) -> ManagePlan {
        let spec = try AdminJSON.addServer(body)
        if server.config.servers.contains(where: { $0.id == spec.id }) {
            throw AdminError(409, field: "id", "\(quoted(spec.id)) is already in use")
        }
        var next = server.config
        next.servers.append(spec)
        return ManagePlan(next: next, previous: server.routing.load(), rebuild: true, newHost: true) {
            [unowned self] state, moved throws(AdminError) in
            let view = serverJSON(spec.id, in: state)
            if !query.dryRun {
                try persist(next.servers, draining: drainedIDs)
                server.publish(state, config: next, reason: "admin add \(spec.id)", movedFraction: moved)
            }
            record("POST", id: spec.id, moved: moved, query: query)
            return answer(query.dryRun ? 200 : 201, view, moved: moved, query: query)
        }
    }

    /// `PATCH /manage/servers/{id}`: a new weight (rebuild and publish) and/or a drain flag flip. 404 when
    /// the id is unknown.
    private func patchPlan(id: String, body: [UInt8], query: ManageQuery) throws(AdminError) -> ManagePlan {
        let previous = server.routing.load()
        guard let index = server.config.servers.firstIndex(where: { $0.id == id }),
            let backend = previous.backend(id: id)
        else { throw unknown(id) }
        let patch = try AdminJSON.patchServer(body)
        var next = server.config
        var rebuild = false
        if let weight = patch.weight, weight != next.servers[index].weight {
            next.servers[index].weight = weight
            rebuild = true
        }
        let draining = patch.state.map { $0 == .draining } ?? backend.isDraining
        return ManagePlan(
            next: next, previous: previous, rebuild: rebuild, newHost: false,
            eligibleNext: { b in b.spec.id == id ? b.isUp && !draining && !b.isRemoved : b.isEligible }
        ) { [unowned self] state, moved throws(AdminError) in
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
    }

    /// `DELETE /manage/servers/{id}`: the server leaves the routing state at once (no new requests), its
    /// in-flight requests finish, its idle pooled connections close. 404 when the id is unknown.
    private func deletePlan(id: String, query: ManageQuery) throws(AdminError) -> ManagePlan {
        guard server.config.servers.contains(where: { $0.id == id }) else { throw unknown(id) }
        var next = server.config
        next.servers.removeAll { $0.id == id }
        let previous = server.routing.load()
        return ManagePlan(next: next, previous: previous, rebuild: true, newHost: false) {
            [unowned self] state, moved throws(AdminError) in
            var view = serverJSON(id, in: previous)
            if !query.dryRun {
                try persist(next.servers, draining: drainedIDs.subtracting([id]))
                server.publish(state, config: next, reason: "admin delete \(id)", movedFraction: moved)
                view["state"] = "removed"
            }
            record("DELETE", id: id, moved: moved, query: query)
            return answer(200, view, moved: moved, query: query)
        }
    }

    // MARK: helpers

    /// `ProxyServer.prepare` with its errors mapped to 400s: an unresolvable host names `host`, a routing
    /// limit (e.g. too many ring points for this weight) names `weight`.
    func prepare(_ next: LBConfig, newHost: Bool) throws(AdminError) -> RoutingState {
        do {
            return try server.prepare(next)
        } catch {
            throw AdminServer.buildError(error, newHost: newHost)
        }
    }

    /// A routing state that could not be built, as the 400 that names the field at fault.
    static func buildError(_ error: any Error, newHost: Bool) -> AdminError {
        switch error {
        case let error as SetupError: AdminError(400, field: newHost ? "host" : nil, error.description)
        case let error as RoutingError: AdminError(400, field: "weight", error.description)
        default: AdminError(400, "\(error)")
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

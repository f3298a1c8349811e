import Foundation
import LBCore
import LBHTTP
import LBUV

/// The admin listener: JSON in and out, on the control loop. Not the hot path, so Foundation is fine here.
final class AdminServer {
    unowned let server: ProxyServer
    private var listener: Listener?
    let boundAddress: SocketAddress
    /// Worker counters as collected for the request being handled (see `ProxyServer.collectStats`).
    var stats = StatsSnapshot()
    /// Totals sampled once a second, for the request rates of `/api/stats` and the dashboard.
    var rate = RequestRate(slots: 10)
    private var sampler: LoopTimer?
    /// Open admin connections (a dashboard keeps one alive), closed with the listener so shutdown ends.
    private var connections = ConnectionList<AdminConnection>()
    /// The loop clock (ms) when the admin API started: "since last change" for servers that never changed.
    let startedAtLoop: UInt64

    /// Binds `address`; with `accepting: false` (a hot upgrade's successor) it accepts after `startAccepting()`.
    convenience init(server: ProxyServer, address: SocketAddress, accepting: Bool = true) throws(SetupError) {
        self.init(server: server, listener: try Listener(loop: server.loop, address: address, accepting: accepting))
    }

    /// Takes over the previous process's admin socket `fd` (hot upgrade); accepts after `startAccepting()`.
    convenience init(server: ProxyServer, adopting fd: Int32) throws(SetupError) {
        self.init(server: server, listener: try Listener(loop: server.loop, adopting: fd))
    }

    private init(server: ProxyServer, listener l: Listener) {
        self.server = server
        startedAtLoop = server.loop.now
        boundAddress = l.boundAddress
        listener = l
        l.onAccept = { [unowned self] listener in
            let conn = AdminConnection(admin: self)
            if listener.accept(into: conn) {
                self.connections.insert(conn)
                conn.startReading()
            }
        }
        startSampling()
    }

    func startAccepting() throws(SetupError) { try listener?.startAccepting() }

    /// The listening socket, for a hand-off; nil once closed.
    var descriptor: Int32? { listener?.descriptor }

    func close() {
        listener?.close()
        listener = nil
        sampler?.close()
        sampler = nil
        connections.forEach { $0.close() }
    }

    /// From `AdminConnection.didClose`.
    func connectionClosed(_ c: AdminConnection) { connections.remove(c) }

    /// Every second, collects every worker's request totals (`ProxyServer.collectRateTotals`) into `rate`. The timer is unref'd
    /// so it never keeps the loop alive on shutdown. Control loop only.
    private func startSampling() {
        let timer = LoopTimer(loop: server.loop) { [unowned self] in
            server.collectRateTotals { [weak self] totals in
                guard let self else { return }
                rate.record(at: server.loop.now, totals: totals)
            }
        }
        timer.unref()
        timer.start(timeout: 0, repeat: 1000)
        sampler = timer
    }

    /// Handles one complete request; `reply` gets the answer, at once or, for a change written through etcd, once
    /// etcd has answered and this instance has applied the change. Control loop only.
    func handle(
        method: HTTPMethod, path: String, query: String, body: [UInt8], authorization: String?,
        reply: @escaping (AdminResponse) -> Void
    ) {
        if let route = AdminRoute.match(path), route == .cluster, route.allowed.contains(method) {
            return clusterJSON(reply: reply)
        }
        if server.etcdSource == nil, server.dnsSource == nil, let route = AdminRoute.match(path),
            route.allowed.contains(method), route == .manageServers || route.isServerRoute
        {
            return manage(
                route: route, method: method, body: body, query: query, authorization: authorization, reply: reply)
        }
        guard let source = server.etcdSource, let route = AdminRoute.match(path), route.allowed.contains(method),
            route == .manageServers || route.isServerRoute
        else {
            return reply(handle(method: method, path: path, query: query, body: body, authorization: authorization))
        }
        do throws(AdminError) {
            try AdminAuth.check(authorization, token: server.config.admin.token)
            let q = try ManageQuery(parsing: query)
            try manageThroughEtcd(source, route: route, method: method, body: body, query: q, reply: reply)
        } catch {
            reply(error.response)
        }
    }

    /// Handles one complete request and returns the answer. Control loop only. Order of checks: unknown path
    /// 404, wrong method 405 (with `Allow`), missing or wrong token 401 (management paths only), then the
    /// request itself (400, 404, 409). Every rejection happens before anything changes.
    func handle(method: HTTPMethod, path: String, query: String, body: [UInt8], authorization: String?)
        -> AdminResponse
    {
        guard let route = AdminRoute.match(path) else {
            return AdminError(404, "no such endpoint: \(path)").response
        }
        guard route.allowed.contains(method) else {
            let allow = route.allowed.map(\.token).joined(separator: ", ")
            return AdminError(405, "\(method.token) is not allowed here; use \(allow)", headers: [("Allow", allow)])
                .response
        }
        do throws(AdminError) {
            if route.isManagement {
                try AdminAuth.check(authorization, token: server.config.admin.token)
            }
            if let dns = server.dnsSource, route == .manageServers || route.isServerRoute {
                // The records are the set: a change here would be undone by the next answer. Refused before
                // anything changes, dry runs included.
                throw AdminError(
                    409,
                    "the servers come from DNS (server_source.type dns, name \(quoted(dns.settings.name))); "
                        + "change its records instead")
            }
            switch route {
            case .health:
                let state = server.routing.load()
                let up = state.backends.filter { $0.isEligible }.count
                // In panic the status stays 503 (no server is healthy, a monitor must see it) while traffic goes on
                // to the down servers; `panic` tells the two apart from a balancer that answers nothing.
                var object: [String: Any] = [
                    "status": up > 0 ? "ok" : "no servers up", "servers_up": up, "servers_total": state.backends.count,
                    "panic": state.isInPanic, "panic_routing": state.panicRouting,
                ]
                // A rejected state file does not stop traffic, so the status stays; it is shown for monitors.
                if case .rejected(let problem)? = server.stateFile?.outcome { object["state_file_error"] = problem }
                // A stale etcd source does not stop traffic either: lb routes with the last set it had.
                if server.etcdSource != nil || server.dnsSource != nil { object["source"] = server.sourceJSON() }
                let body = json(object)
                return AdminResponse(status: up > 0 ? 200 : 503, body: body)
            case .servers:
                let state = server.routing.load()
                var object: [String: Any] = ["servers": serversJSON(state), "panic": state.isInPanic]
                if let stateFile = server.stateFile { object["state_file"] = stateFile.json() }
                if server.etcdSource != nil || server.dnsSource != nil { object["source"] = server.sourceJSON() }
                return AdminResponse(status: 200, body: json(object))
            case .stats:
                return AdminResponse(status: 200, body: json(statsJSON()))
            case .cluster:
                // With etcd the answer needs a read of etcd: `handle(…, reply:)` gives it.
                throw AdminServer.noCluster
            case .metrics:
                return AdminResponse(status: 200, body: metricsText(), contentType: AdminResponse.prometheus)
            case .dashboard:
                return AdminResponse(status: 200, body: DashboardPage.html, contentType: AdminResponse.html)
            case .manageServers, .manageServer:
                // Only through `handle(…, reply:)`: `manage` (static source) or `manageThroughEtcd`.
                throw AdminServer.changesAnswerLater
            case .reloadCertificates:
                let q = try ManageQuery(parsing: query)
                let problems = server.reloadCertificates(server.config, dryRun: q.dryRun)
                guard problems.isEmpty else {
                    throw AdminError(422, "certificates not reloaded, the running ones stay: "
                        + problems.joined(separator: "; "))
                }
                return AdminResponse(status: 200, body: json([
                    "reloaded": !q.dryRun, "dry_run": q.dryRun, "certificates": certificatesJSON(),
                ]))
            }
        } catch {
            return error.response
        }
    }

    /// One object per server of `given` (default: the published state), in id order. `draining` overrides the
    /// live drain flag of the server with that id (a PATCH showing the state it is about to set).
    ///
    /// `origin` is `config` for a server the config lists at this address and `runtime` for one added through
    /// the admin API; `runtime_changes` names the fields changed at runtime on a config server (`weight`) and
    /// a drain (`state`) on any server.
    func serversJSON(
        _ given: RoutingState? = nil, draining: (id: String, value: Bool)? = nil, only: String? = nil
    ) -> [[String: Any]] {
        let state = given ?? server.routing.load()
        let shares = state.snapshot.keyspaceShares()
        let configured = Dictionary(server.configServers.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return state.backends.enumerated().compactMap { i, b in
            if let only, b.spec.id != only { return nil }
            let snap = stats.backends[b.spec.id] ?? StatsSnapshot.Backend()
            let active = snap.activeConnections
            let requests = snap.counters.requests
            let drained = draining.flatMap { $0.id == b.spec.id ? $0.value : nil } ?? b.isDraining
            var changes: [String] = []
            let origin = RuntimeChanges.origin(of: b.spec, config: configured)
            if origin == .config(weightChanged: true) { changes.append("weight") }
            if drained { changes.append("state") }
            let entry: [String: Any] = [
                "id": b.spec.id, "host": b.spec.host, "port": b.spec.port, "weight": b.spec.weight,
                "state": b.stateName(draining: drained),
                "origin": origin == .runtime ? "runtime" : "config", "runtime_changes": changes,
                "active_connections": active, "requests": requests, "keyspace_share": shares[i],
                "last_check": b.health.lastCheckJSON(), "health": b.health.summaryJSON(now: server.loop.now),
            ]
            return entry
        }
    }

    func json(_ object: Any) -> String { AdminJSON.text(object) }
}

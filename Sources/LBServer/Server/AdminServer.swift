import Foundation
import LBCore

/// The admin listener: JSON in and out, on the control loop. Not the hot path, so Foundation is fine here.
final class AdminServer {
    unowned let server: ProxyServer
    private var listener: Listener?
    let boundAddress: SocketAddress

    init(server: ProxyServer, address: SocketAddress) throws(SetupError) {
        self.server = server
        let l = try Listener(loop: server.loop, address: address)
        boundAddress = l.boundAddress
        listener = l
        l.onAccept = { [unowned self] listener in
            let conn = AdminConnection(admin: self)
            if listener.accept(into: conn) { conn.startReading() }
        }
    }

    func close() {
        listener?.close()
        listener = nil
    }

    /// Handles one complete request; returns status, JSON body.
    func handle(method: HTTPMethod, path: String, query: String, body: [UInt8], authorization: String?) -> (Int, String) {
        switch (method, path) {
        case (.get, "/api/health"):
            let state = server.routing.load()
            let up = state.backends.filter { $0.isEligible }.count
            let body = json(["status": up > 0 ? "ok" : "no servers up", "servers_up": up, "servers_total": state.backends.count])
            return (up > 0 ? 200 : 503, body)
        case (.get, "/api/servers"):
            return (200, json(["servers": serversJSON()]))
        default:
            return (404, json(["error": "no such endpoint: \(path)"]))
        }
    }

    func serversJSON() -> [[String: Any]] {
        let state = server.routing.load()
        let shares = state.snapshot.keyspaceShares()
        return state.backends.enumerated().map { i, b in
            var active = 0
            var requests: UInt64 = 0
            for slot in b.perWorker {
                active += slot.activeConnections
                requests += slot.stats.requests
            }
            return [
                "id": b.spec.id, "host": b.spec.host, "port": b.spec.port, "weight": b.spec.weight,
                "state": b.isDraining ? "draining" : (b.isUp ? "up" : "down"),
                "active_connections": active, "requests": requests, "keyspace_share": shares[i],
                "last_check": b.health.lastCheckJSON(), "health": b.health.summaryJSON(now: server.loop.now),
            ]
        }
    }

    func json(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// One admin client connection: reads a request (body up to 64 KiB), answers, keeps alive if asked.
final class AdminConnection: TCPConnection {
    unowned let admin: AdminServer
    var parser: HTTPParser
    private var body: [UInt8] = []
    private var tooLarge = false
    static let maxBody = 64 * 1024

    init(admin: AdminServer) {
        self.admin = admin
        parser = HTTPParser(kind: .request, limits: HTTPLimits())
        super.init(loop: admin.server.loop)
    }

    override func didRead(_ bytes: UnsafeRawBufferPointer) {
        var pos = 0
        while !isClosing {
            switch parser.next(bytes, &pos) {
            case .needMore:
                return
            case .head:
                body.removeAll()
                tooLarge = false
            case .body(let r):
                if body.count + r.count > AdminConnection.maxBody { tooLarge = true } else {
                    body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[r]))
                }
            case .end:
                respond()
            case .error(let e):
                ErrorResponses.write(status: e.status, close: true, into: &out)
                closeAfterFlush()
                return
            }
        }
    }

    private func respond() {
        let head = parser.head
        let target = String(decoding: head.bytes[head.target], as: UTF8.self)
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "")
        let query = parts.count > 1 ? String(parts[1]) : ""
        let auth: String? = head.bytes.withUnsafeBytes { raw in
            RoutingKey.fieldValue(head, raw, named: "authorization").map {
                String(decoding: UnsafeRawBufferPointer(rebasing: raw[$0]), as: UTF8.self)
            }
        }
        let (status, text): (Int, String)
        if tooLarge {
            (status, text) = (413, admin.json(["error": "request body over \(AdminConnection.maxBody) bytes"]))
        } else {
            (status, text) = admin.handle(method: head.method, path: path, query: query, body: body, authorization: auth)
        }
        let payload = Array(text.utf8)
        let close = !head.keepAlive
        var headText = "HTTP/1.1 \(status) \(AdminConnection.reason(status))\r\nContent-Type: application/json\r\n"
        headText += "Content-Length: \(payload.count)\r\nCache-Control: no-store\r\n"
        headText += close ? "Connection: close\r\n\r\n" : "\r\n"
        append(Array(headText.utf8))
        append(payload)
        if close { closeAfterFlush() } else { flush() }
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

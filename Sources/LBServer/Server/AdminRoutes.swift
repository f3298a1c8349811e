import Foundation
import LBHTTP

/// One admin answer: status, body text, its media type (JSON unless a route says otherwise: `/metrics` is
/// Prometheus text, `/` is HTML) and any extra header fields (`Allow`, `WWW-Authenticate`).
struct AdminResponse {
    var status: Int
    var body: String
    var headers: [(name: String, value: String)] = []
    var contentType = AdminResponse.json

    static let json = "application/json"
    /// Prometheus text exposition format 0.0.4 (what `promtool` and every scraper accept).
    static let prometheus = "text/plain; version=0.0.4; charset=utf-8"
    static let html = "text/html; charset=utf-8"
}

/// A rejected admin call. `field` names the request field (or query parameter) at fault when there is one;
/// the JSON is `{"error": "field: message", "field": "field"}`. Thrown before any state changes.
struct AdminError: Error {
    var status: Int
    var field: String?
    var message: String
    var headers: [(name: String, value: String)] = []

    init(_ status: Int, field: String? = nil, _ message: String, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.field = field
        self.message = message
        self.headers = headers
    }

    var response: AdminResponse {
        var object: [String: Any] = ["error": field.map { "\($0): \(message)" } ?? message]
        if let field { object["field"] = field }
        return AdminResponse(status: status, body: AdminJSON.text(object), headers: headers)
    }
}

/// The admin API's paths. Matching is exact (no trailing slash); `{id}` is one percent-decoded segment.
enum AdminRoute: Equatable {
    case health
    case servers
    case stats
    /// The live lb instances of an etcd cluster.
    case cluster
    /// Prometheus metrics.
    case metrics
    /// The dashboard page.
    case dashboard
    case manageServers
    case manageServer(id: String)
    /// Loads the TLS listeners' certificate files again.
    case reloadCertificates

    static let managePrefix = "/manage/servers/"

    /// The route for a request path, or nil (404).
    static func match(_ path: String) -> AdminRoute? {
        switch path {
        case "/api/health": return .health
        case "/api/servers": return .servers
        case "/api/stats": return .stats
        case "/api/cluster": return .cluster
        case "/metrics": return .metrics
        case "/": return .dashboard
        case "/manage/servers": return .manageServers
        case "/manage/certificates/reload": return .reloadCertificates
        default:
            guard path.hasPrefix(managePrefix) else { return nil }
            let raw = path.dropFirst(managePrefix.count)
            guard !raw.isEmpty, !raw.contains("/"), let id = String(raw).removingPercentEncoding else { return nil }
            return .manageServer(id: id)
        }
    }

    /// Methods this path answers, in the order `Allow` lists them.
    var allowed: [HTTPMethod] {
        switch self {
        case .health, .servers, .stats, .cluster, .metrics, .dashboard: [.get]
        case .manageServers, .reloadCertificates: [.post]
        case .manageServer: [.patch, .delete]
        }
    }

    /// True for `/manage/servers/{id}`.
    var isServerRoute: Bool {
        if case .manageServer = self { return true }
        return false
    }

    /// True for the paths whose answer shows the workers' counters, collected from every worker first
    /// (`ProxyServer.collectStats`). Other paths answer without asking the workers: a collection copies every
    /// server's counters on each worker's loop and leaves the worker to copy each latency histogram again at its
    /// next recorded value (about 50 MB with 1,000 servers), which a burst of admin changes must not cost the
    /// clients. A change's answer shows its server's counters as of the last collection.
    var readsCounters: Bool {
        switch self {
        case .servers, .stats, .metrics: true
        default: false
        }
    }

    /// True for the paths that change state (and so need the bearer token when one is configured).
    var isManagement: Bool {
        switch self {
        case .manageServers, .manageServer, .reloadCertificates: true
        default: false
        }
    }
}

extension HTTPMethod {
    /// The method's token as sent on the wire, for `Allow`.
    var token: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .patch: "PATCH"
        case .trace: "TRACE"
        case .connect: "CONNECT"
        case .other: "OTHER"
        }
    }
}

/// Query parameters of management calls. Only `dry_run` exists; anything else is a 400 so a typo such as
/// `?dryrun=1` never turns a rehearsal into a real change.
struct ManageQuery: Equatable {
    var dryRun = false

    /// Accepts `dry_run`, `dry_run=1|true|0|false`. Throws 400 naming the parameter.
    init(parsing query: String) throws(AdminError) {
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0]).removingPercentEncoding ?? String(pair[0])
            let value = pair.count > 1 ? String(pair[1]) : "1"
            guard name == "dry_run" else {
                throw AdminError(400, field: name, "unknown query parameter; the only one is dry_run")
            }
            switch value {
            case "1", "true": dryRun = true
            case "0", "false": dryRun = false
            default: throw AdminError(400, field: "dry_run", "\(quoted(value)) is not one of 1, true, 0, false")
            }
        }
    }
}

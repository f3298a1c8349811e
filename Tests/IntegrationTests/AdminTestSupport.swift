import Foundation
import XCTest

/// One admin API answer: status, headers and the body parsed as a JSON object (empty if it is not one).
struct AdminAnswer {
    let response: HTTPResponse
    var status: Int { response.status }
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    }
    var error: String { json["error"] as? String ?? "" }
    var movedFraction: Double { json["moved_fraction"] as? Double ?? -1 }
    var server: [String: Any] { json["server"] as? [String: Any] ?? [:] }
}

/// Talks to an `lb-server`'s admin listener with one fresh connection per call.
struct AdminClient {
    let port: Int
    var token: String?

    func call(
        _ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = [],
        authorize: Bool = true
    ) throws -> AdminAnswer {
        var headers = headers
        if authorize, let token { headers.append(("Authorization", "Bearer \(token)")) }
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let response = try HTTPClient.request(
            port: port, method: method, path: path, headers: headers, body: body.map { Array($0.utf8) }, timeout: 10)
        return AdminAnswer(response: response)
    }

    /// `GET /api/servers` for before/after comparisons: the raw body with each server's health-check
    /// observations (`last_check`, `health`) removed, since the checker may finish a probe between two reads;
    /// everything an admin change could touch (ids, weights, states, shares, counters) stays byte for byte.
    func serversBody() throws -> String {
        let body = try call("GET", "/api/servers").response.bodyString
        guard var object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let servers = object["servers"] as? [[String: Any]]
        else { return body }
        object["servers"] = servers.map { $0.filter { $0.key != "last_check" && $0.key != "health" } }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// … and as `id → server object`.
    func servers() throws -> [String: [String: Any]] {
        let list = try call("GET", "/api/servers").json["servers"] as? [[String: Any]] ?? []
        var byID: [String: [String: Any]] = [:]
        for s in list { byID[s["id"] as? String ?? "?"] = s }
        return byID
    }
}

/// Routes many paths through the proxy on one keep-alive connection and records which backend answered each.
enum TrafficProbe {
    static func paths(_ count: Int, prefix: String = "/key") -> [String] { (0..<count).map { "\(prefix)/\($0)" } }

    /// `path → X-Backend` for every path; fails the test on any non-200 answer.
    static func backends(port: Int, paths: [String], file: StaticString = #filePath, line: UInt = #line) throws
        -> [String: String]
    {
        let connection = try RawHTTPConnection(port: port, timeout: 10)
        defer { connection.close() }
        var result: [String: String] = [:]
        for path in paths {
            try connection.send("GET \(path) HTTP/1.1\r\nHost: probe\r\n\r\n")
            let response = try connection.readResponse()
            XCTAssertEqual(response.status, 200, "GET \(path): \(response.bodyString)", file: file, line: line)
            result[path] = response.header("X-Backend") ?? "?"
        }
        return result
    }

    /// How many paths each backend answered.
    static func counts(_ map: [String: String]) -> [String: Int] {
        map.values.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    /// Fraction of `before`'s paths that `after` sends to a different backend.
    static func changedFraction(_ before: [String: String], _ after: [String: String]) -> Double {
        let changed = before.filter { after[$0.key] != $0.value }.count
        return Double(changed) / Double(max(1, before.count))
    }
}

extension IntegrationTestCase {
    /// Starts `count` demo backends named b1…bN and an `lb-server` routing over them by path.
    func startCluster(backends count: Int, configFile: String? = nil) throws -> ([DemoBackend], LBServerProcess) {
        let backends = try (1...count).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        let server = try LBBinaries.startServer(backends: backends.map(\.address), configFile: configFile)
        return (backends, server)
    }
}

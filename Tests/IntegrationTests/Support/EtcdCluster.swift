import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// A real etcd cluster on loopback for the etcd source's tests: `members` etcd processes (Debian's `etcd-server`)
/// on free ports, each with a temporary data directory removed at tear-down, spoken to through their HTTP/JSON
/// gateway. Members can be stopped and started again on the same ports and data.
final class EtcdCluster {
    struct Member {
        let name: String
        let clientPort: Int
        let peerPort: Int
        let dataDirectory: String
        var process: ManagedProcess?
        var clientURL: String { "http://127.0.0.1:\(clientPort)" }
    }

    private(set) var members: [Member]
    private let executable: String
    private let clusterToken = "lb-test-\(UUID().uuidString.prefix(8))"

    /// Comma-separated client URLs, for `--etcd`.
    var endpoints: String { members.map(\.clientURL).joined(separator: ",") }

    /// Starts the cluster and waits until it answers. Skips (fails under CI) when etcd is not installed.
    init(_ test: IntegrationTestCase, members count: Int) throws {
        executable = try test.requiredTool("etcd", package: "etcd-server")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lb-etcd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        // Every port is held open until all are chosen, so no two members are given the same one.
        let sockets = try (0..<(2 * count)).map { _ in try LoopbackSocket.listen() }
        for s in sockets { Glibc.close(s.fd) }
        members = (0..<count).map { i in
            Member(
                name: "m\(i)", clientPort: sockets[2 * i].port, peerPort: sockets[2 * i + 1].port,
                dataDirectory: "\(root)/m\(i)")
        }
        test.addTeardownBlock { [self] in stopAll() }
        startAll()
        try waitUntilServing()
    }

    private func arguments(_ m: Member) -> [String] {
        let initial = members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        return [
            "--name", m.name, "--data-dir", m.dataDirectory,
            "--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
            "--listen-peer-urls", "http://127.0.0.1:\(m.peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(m.peerPort)",
            "--initial-cluster", initial, "--initial-cluster-token", clusterToken, "--initial-cluster-state", "new",
            // Loopback: short heartbeats make elections quick after a member restarts.
            "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "warn",
        ]
    }

    /// Starts every stopped member (the first start, or a restart on the same ports and data).
    func startAll() {
        for i in members.indices where members[i].process == nil {
            members[i].process = try? ManagedProcess.start(
                executable, arguments(members[i]), name: "etcd-\(members[i].name)")
        }
    }

    /// Stops every member (SIGTERM, then SIGKILL after a grace period).
    func stopAll() {
        for i in members.indices {
            _ = members[i].process?.terminate(grace: 5)
            members[i].process = nil
        }
    }

    /// Stops one member; the others keep a quorum of a 3-member cluster.
    func stop(member i: Int) {
        _ = members[i].process?.terminate(grace: 5)
        members[i].process = nil
    }

    /// Kills one member with SIGKILL (no goodbye to its peers, as a crashed machine); the others keep a quorum.
    func kill(member i: Int) {
        members[i].process?.signal(SIGKILL)
        _ = members[i].process?.terminate(grace: 5)
        members[i].process = nil
    }

    /// The index of the member that is the leader now, as the running members report it.
    func leaderIndex() throws -> Int {
        var leader: String?
        var ids: [Int: String] = [:]
        for (i, m) in members.enumerated() where m.process != nil {
            let response = try HTTPClient.request(
                port: m.clientPort, method: "POST", path: "/v3/maintenance/status",
                headers: [("Content-Type", "application/json")], body: Array("{}".utf8), timeout: 5)
            let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
            ids[i] = (object["header"] as? [String: Any])?["member_id"] as? String
            leader = leader ?? object["leader"] as? String
        }
        guard let leader, let index = ids.first(where: { $0.value == leader })?.key else {
            throw HarnessError.conditionNotMet(description: "no running etcd member is the leader", timeout: 0)
        }
        return index
    }

    /// Waits until a write through the first member succeeds (a leader is elected).
    func waitUntilServing(timeout: TimeInterval = 20) throws {
        try eventually(timeout: timeout, interval: 0.1, "etcd answers on \(endpoints)") {
            (try? currentRevision()) != nil
        }
    }

    // MARK: the gateway

    /// POST `body` as JSON to `path` on the first member that answers; returns the decoded object.
    @discardableResult
    func call(_ path: String, _ body: [String: Any]) throws -> [String: Any] {
        let data = try JSONSerialization.data(withJSONObject: body)
        var lastError: Error = HarnessError.conditionNotMet(description: "no etcd member answered", timeout: 0)
        for m in members where m.process != nil {
            do {
                var headers = [("Content-Type", "application/json")]
                if let token { headers.append(("Authorization", token)) }
                let response = try HTTPClient.request(
                    port: m.clientPort, method: "POST", path: path, headers: headers, body: [UInt8](data), timeout: 5)
                guard response.status == 200,
                    let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                else {
                    lastError = HarnessError.conditionNotMet(
                        description: "etcd \(path): \(response.status) \(response.bodyString)", timeout: 0)
                    continue
                }
                return object
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// The auth token every call sends once `enableAuthentication` has run.
    private(set) var token: String?

    /// Creates `root` with `password` (and the root role etcd requires of it), turns authentication on and
    /// signs in as root for the calls that follow.
    func enableAuthentication(password: String) throws {
        try call("/v3/auth/user/add", ["name": "root", "password": password])
        try call("/v3/auth/role/add", ["name": "root"])
        try call("/v3/auth/user/grant", ["user": "root", "role": "root"])
        try call("/v3/auth/enable", [:])
        token = try call("/v3/auth/authenticate", ["name": "root", "password": password])["token"] as? String
    }

    private static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    private static func revision(_ object: [String: Any]) -> Int64 {
        ((object["header"] as? [String: Any])?["revision"] as? String).flatMap { Int64($0) } ?? -1
    }

    /// Puts `value` at `key`; returns the revision of the write.
    @discardableResult
    func put(_ key: String, _ value: String) throws -> Int64 {
        Self.revision(try call("/v3/kv/put", ["key": Self.b64(key), "value": Self.b64(value)]))
    }

    /// Puts a server spec (`{"id","host","port","weight"}`) under `/lb/<cluster>/servers/<id>`.
    @discardableResult
    func putServer(cluster: String, id: String, port: Int, weight: Int = 1, host: String = "127.0.0.1") throws -> Int64
    {
        let spec: [String: Any] = ["id": id, "host": host, "port": port, "weight": weight]
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys]), as: UTF8.self)
        return try put("/lb/\(cluster)/servers/\(id)", json)
    }

    /// Deletes `key`; returns the revision of the delete.
    @discardableResult
    func delete(_ key: String) throws -> Int64 {
        Self.revision(try call("/v3/kv/deleterange", ["key": Self.b64(key)]))
    }

    /// The value at `key`, or nil when there is none.
    func value(_ key: String) throws -> [UInt8]? {
        let kvs = try call("/v3/kv/range", ["key": Self.b64(key)])["kvs"] as? [[String: Any]] ?? []
        return (kvs.first?["value"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
            ?? (kvs.isEmpty ? nil : [])
    }

    /// The newest `mod_revision` among the servers of `cluster`: the revision an instance must have applied to
    /// hold the set as it is (etcd's own revision also counts the instances' registration writes).
    func serversRevision(cluster: String) throws -> Int64 {
        let prefix = "/lb/\(cluster)/servers/"
        var end = Array(prefix.utf8)
        end[end.count - 1] += 1
        let kvs =
            try call("/v3/kv/range", ["key": Self.b64(prefix), "range_end": Data(end).base64EncodedString()])["kvs"]
            as? [[String: Any]] ?? []
        return kvs.compactMap { ($0["mod_revision"] as? String).flatMap { Int64($0) } }.max() ?? 0
    }

    func currentRevision() throws -> Int64 {
        Self.revision(try call("/v3/kv/range", ["key": Self.b64("/"), "count_only": true]))
    }

    /// Compacts the history up to `revision`: a watch from before it is cancelled with `compact_revision`.
    func compact(_ revision: Int64) throws {
        try call("/v3/kv/compaction", ["revision": String(revision), "physical": true])
    }
}

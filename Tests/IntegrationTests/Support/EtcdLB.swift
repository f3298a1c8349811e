import Foundation
import XCTest

/// An `lb-server` whose servers come from etcd, and what its admin API says about that source.
struct EtcdLB {
    let server: LBServerProcess
    let admin: AdminClient

    /// `source` of `GET /api/health`.
    func source() throws -> [String: Any] {
        try admin.call("GET", "/api/health").json["source"] as? [String: Any] ?? [:]
    }

    /// The etcd revision its server set reflects.
    func revision() throws -> Int64 { (try source()["revision"] as? NSNumber)?.int64Value ?? -1 }

    /// Waits until its watch runs (`state: current`): applying the first read comes just before it.
    func waitCurrent(timeout: TimeInterval = 10) throws {
        try eventually(timeout: timeout, "lb on admin port \(admin.port) watches etcd") {
            try source()["state"] as? String == "current"
        }
    }

    /// `GET /api/cluster`'s instances, by id.
    func instances() throws -> [String: [String: Any]] {
        let list = try admin.call("GET", "/api/cluster").json["instances"] as? [[String: Any]] ?? []
        return Dictionary(list.map { ($0["id"] as? String ?? "?", $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Ids of the servers it routes to.
    func serverIDs() throws -> [String] { try admin.servers().keys.sorted() }

    /// Waits until it has applied `revision`; returns the wall-clock time (ms) of its last apply.
    @discardableResult
    func waitApplied(_ revision: Int64, timeout: TimeInterval = 10) throws -> Int64 {
        var appliedAt: Int64 = -1
        try eventually(timeout: timeout, interval: 0.005, "lb on admin port \(admin.port) applied revision \(revision)")
        {
            let s = try source()
            guard ((s["revision"] as? NSNumber)?.int64Value ?? -1) >= revision else { return false }
            appliedAt = (s["applied_at_ms"] as? NSNumber)?.int64Value ?? -1
            return true
        }
        return appliedAt
    }
}

extension IntegrationTestCase {
    /// Starts `lb-server --etcd ENDPOINTS --cluster NAME` with health checks off (every server takes requests, so
    /// routing depends on the server set alone) and no servers in its config.
    /// With `instanceID`, the source is written into the config file instead, with that `instance_id` and a
    /// lease of `leaseTTL`.
    /// `credentials` go into the file as `username` and `password`.
    func startEtcdLB(
        endpoints: String, cluster: String, instanceID: String? = nil, leaseTTL: String = "3s",
        credentials: (user: String, password: String)? = nil
    ) throws -> EtcdLB {
        let server: LBServerProcess
        if instanceID != nil || credentials != nil {
            var source: [String: Any] = [
                "type": "etcd", "endpoints": endpoints.split(separator: ",").map(String.init), "cluster": cluster,
                "lease_ttl": leaseTTL,
            ]
            if let instanceID { source["instance_id"] = instanceID }
            if let credentials {
                source["username"] = credentials.user
                source["password"] = credentials.password
            }
            server = try LBBinaries.startServer(
                backends: [], configFile: try writeConfigFile(["server_source": source]))
        } else {
            server = try LBBinaries.startServer(
                backends: [], configFile: try writeConfigFile([:]),
                extraArguments: ["--etcd", endpoints, "--cluster", cluster])
        }
        return EtcdLB(server: server, admin: AdminClient(port: server.adminPort))
    }

    /// Demo backends named b1...bN.
    func demoBackends(_ count: Int) throws -> [DemoBackend] {
        try (1...count).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
    }
}

/// Milliseconds since 1970, as lb reports `applied_at_ms`.
func wallClockMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

/// `text` as a JSON object, or nil.
func jsonObject(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

import Foundation
import XCTest

/// `Tests/dns/dns_server.py` (dnslib) on a free loopback port, UDP and TCP: it answers from a JSON zone file it
/// reads at every query, so `setZone` changes its answers at once, and logs every query it gets.
final class DNSTestServer {
    static let script = LBBinaries.packageRoot.appendingPathComponent("Tests/dns/dns_server.py").path

    let process: ManagedProcess
    let port: Int
    private let zonePath: String
    private let logPath: String

    /// `IP:PORT` for `server_source.dns.resolvers`.
    var resolver: String { "127.0.0.1:\(port)" }

    init(_ test: IntegrationTestCase, zone: [String: Any] = [:]) throws {
        let python = try test.requiredPythonModule("dnslib", package: "python3-dnslib")
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("lb-dns-\(UUID().uuidString)").path
        zonePath = base + ".zone.json"
        logPath = base + ".queries.jsonl"
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: logPath])
        }
        let (zonePath, logPath) = (zonePath, logPath)
        test.addTeardownBlock {
            try? FileManager.default.removeItem(atPath: zonePath)
            try? FileManager.default.removeItem(atPath: logPath)
        }
        try Self.write(zone, to: zonePath)
        process = try ManagedProcess.start(python, [Self.script, zonePath, logPath], name: "dns-server")
        port = try process.waitForListening(kind: .backend)
    }

    /// Replaces the zone (written whole, then renamed into place: a query never reads half a file).
    func setZone(_ zone: [String: Any]) throws { try Self.write(zone, to: zonePath) }

    private static func write(_ zone: [String: Any], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: zone, options: [.sortedKeys])
        let temporary = path + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw HarnessError.launchFailed(command: "rename", underlying: path) }
    }

    /// The times (Unix seconds) of the queries for `name` (of `type`, when given), oldest first.
    func queries(_ name: String, type: String? = nil) -> [Double] {
        let text = String(decoding: FileManager.default.contents(atPath: logPath) ?? Data(), as: UTF8.self)
        return text.split(separator: "\n").compactMap { line in
            guard let object = jsonObject(String(line)), object["name"] as? String == name,
                type == nil || object["type"] as? String == type
            else { return nil }
            return object["t"] as? Double
        }
    }

    // Records, in the zone file's form.
    static func a(_ address: String, ttl: Int = 0) -> [String: Any] { ["type": "A", "value": address, "ttl": ttl] }
    static func srv(priority: Int, weight: Int, port: Int, target: String, ttl: Int = 0) -> [String: Any] {
        ["type": "SRV", "priority": priority, "weight": weight, "port": port, "target": target, "ttl": ttl]
    }
}

/// An `lb-server` whose servers come from DNS, and what its admin API says about that source.
struct DNSLB {
    let server: LBServerProcess
    let admin: AdminClient

    /// `source` of `GET /api/health`.
    func source() throws -> [String: Any] {
        try admin.call("GET", "/api/health").json["source"] as? [String: Any] ?? [:]
    }

    func failures(_ kind: String) throws -> Int { (try source()["failures"] as? [String: Int])?[kind] ?? 0 }

    /// Ids of the servers it routes to.
    func serverIDs() throws -> [String] { try admin.servers().keys.sorted() }

    /// Waits until its servers are exactly `ids`.
    func waitServers(_ ids: [String], timeout: TimeInterval = 10) throws {
        try eventually(timeout: timeout, "lb on admin port \(admin.port) routes to \(ids)") {
            try serverIDs() == ids.sorted()
        }
    }
}

extension IntegrationTestCase {
    /// Starts `lb-server` with `server_source: {"type": "dns", "dns": DNS}` and health checks off, and returns at
    /// once: it listens before any answer.
    func startDNSLB(_ dns: [String: Any]) throws -> DNSLB {
        let server = try LBBinaries.startServer(
            backends: [], configFile: try writeConfigFile(["server_source": ["type": "dns", "dns": dns]]))
        return DNSLB(server: server, admin: AdminClient(port: server.adminPort))
    }
}

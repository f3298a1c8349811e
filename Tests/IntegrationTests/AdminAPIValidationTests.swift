import Foundation
import XCTest

/// Every malformed management call gets its status and a JSON error naming the problem, and changes nothing;
/// with a token configured, mutating calls need it.
final class AdminAPIValidationTests: IntegrationTestCase {
    func testMalformedCallsAreRejectedWithTheirStatusAndChangeNothing() throws {
        // Health checks off: a probe result landing between two reads would change /api/servers by itself.
        let config = NSTemporaryDirectory() + "lb-admin-validation-\(UUID().uuidString).json"
        try #"{"health_check": {"enabled": false}}"#.write(toFile: config, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: config) }
        let (backends, lb) = try startCluster(backends: 2, configFile: config)
        let admin = AdminClient(port: lb.adminPort)
        let id = backends[0].address
        let port = backends[0].port
        let servers = try admin.serversBody()
        let big = #"{"host": "127.0.0.1", "port": 9, "id": ""# + String(repeating: "x", count: 70_000) + #""}"#
        // (method, path, body, status, text the error must contain)
        let cases: [(String, String, String?, Int, String)] = [
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 9"#, 400, "malformed JSON"),
            ("POST", "/manage/servers", "", 400, "body"),
            ("POST", "/manage/servers", "[1, 2]", 400, "expected a JSON object"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1"}"#, 400, "port"),
            ("POST", "/manage/servers", #"{"port": 9}"#, 400, "host"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 0}"#, 400, "port"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 65536}"#, 400, "port"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 80.5}"#, 400, "port"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": "80"}"#, 400, "port"),
            ("POST", "/manage/servers", #"{"host": "", "port": 9}"#, 400, "host"),
            ("POST", "/manage/servers", #"{"host": 127, "port": 9}"#, 400, "host"),
            ("POST", "/manage/servers", #"{"host": "no-such-host.invalid", "port": 9}"#, 400, "host"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 9, "weight": -1}"#, 400, "weight"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 9, "weight": 1001}"#, 400, "weight"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 9, "weight": true}"#, 400, "weight"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 9, "colour": "red"}"#, 400, "colour"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": 9, "port": 10}"#, 400, "port"),
            ("POST", "/manage/servers", #"{"host": "127.0.0.1", "port": \#(port)}"#, 409, "id"),
            ("POST", "/manage/servers?dryrun=1", #"{"host": "127.0.0.1", "port": 9}"#, 400, "dryrun"),
            ("POST", "/manage/servers?dry_run=maybe", #"{"host": "127.0.0.1", "port": 9}"#, 400, "dry_run"),
            ("POST", "/manage/servers", big, 413, "65536"),
            ("PATCH", "/manage/servers/\(id)", #"{"state": "off"}"#, 400, "state"),
            ("PATCH", "/manage/servers/\(id)", #"{"state": 1}"#, 400, "state"),
            ("PATCH", "/manage/servers/\(id)", #"{"weight": -5}"#, 400, "weight"),
            ("PATCH", "/manage/servers/\(id)", #"{"weight": "3"}"#, 400, "weight"),
            ("PATCH", "/manage/servers/\(id)", #"{"weight": 2, "state": "gone"}"#, 400, "state"),
            ("PATCH", "/manage/servers/\(id)", "{}", 400, "weight"),
            ("PATCH", "/manage/servers/\(id)", #"{"host": "127.0.0.1"}"#, 400, "host"),
            ("PATCH", "/manage/servers/nope", #"{"weight": 2}"#, 404, "nope"),
            ("DELETE", "/manage/servers/nope", nil, 404, "nope"),
            ("GET", "/manage/servers", nil, 405, "POST"),
            ("PUT", "/manage/servers/\(id)", #"{"weight": 2}"#, 405, "PATCH"),
            ("POST", "/api/servers", "{}", 405, "GET"),
            ("DELETE", "/api/stats", nil, 405, "GET"),
            ("GET", "/api/nothing", nil, 404, "no such endpoint"),
            ("GET", "/manage/servers/\(id)/x", nil, 404, "no such endpoint"),
        ]
        for (method, path, body, status, text) in cases {
            let answer = try admin.call(method, path, body: body)
            let what = "\(method) \(path) \(body?.prefix(60) ?? "")"
            XCTAssertEqual(answer.status, status, "\(what): \(answer.response.bodyString)")
            XCTAssertTrue(answer.error.contains(text), "\(what): error \(answer.error.debugDescription) lacks \(text)")
            if status == 405 { XCTAssertNotNil(answer.response.header("Allow"), what) }
            XCTAssertEqual(try admin.serversBody(), servers, "\(what) changed the server list")
        }
        XCTAssertEqual(try admin.call("GET", "/manage/servers").response.header("Allow"), "POST")
        XCTAssertEqual(try admin.call("PUT", "/manage/servers/x").response.header("Allow"), "PATCH, DELETE")
    }

    func testTokenIsRequiredForChangesButNotForReads() throws {
        let b1 = try LBBinaries.startDemoBackend(name: "b1")
        let b2 = try LBBinaries.startDemoBackend(name: "b2")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lb-admin-\(UUID().uuidString).json")
        try Data(#"{"admin": {"token": "s3cret-token"}}"#.utf8).write(to: file)
        addTeardownBlock { try? FileManager.default.removeItem(at: file) }
        let lb = try LBBinaries.startServer(backends: [b1.address], configFile: file.path)
        let open = AdminClient(port: lb.adminPort)
        let servers = try open.serversBody()
        XCTAssertEqual(try open.call("GET", "/api/health").status, 200)
        XCTAssertEqual(try open.call("GET", "/api/stats").status, 200)

        let add = #"{"host": "127.0.0.1", "port": \#(b2.port), "id": "b2"}"#
        let missing = try open.call("POST", "/manage/servers", body: add)
        XCTAssertEqual(missing.status, 401)
        XCTAssertEqual(missing.response.header("WWW-Authenticate")?.hasPrefix("Bearer"), true)
        let wrong = [
            "Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-token2", "Basic czNjcmV0LXRva2Vu", "s3cret-token",
        ]
        for header in wrong {
            let answer = try open.call("POST", "/manage/servers", body: add, headers: [("Authorization", header)])
            XCTAssertEqual(answer.status, 401, header)
        }
        XCTAssertEqual(try open.call("DELETE", "/manage/servers/\(b1.address)").status, 401)
        XCTAssertEqual(try open.call("PATCH", "/manage/servers/\(b1.address)", body: #"{"weight": 2}"#).status, 401)
        XCTAssertEqual(try open.call("POST", "/manage/servers?dry_run=1", body: add).status, 401)
        XCTAssertEqual(try open.serversBody(), servers, "rejected calls changed the server list")

        let authorized = AdminClient(port: lb.adminPort, token: "s3cret-token")
        XCTAssertEqual(try authorized.call("POST", "/manage/servers", body: add).status, 201)
        let lowercase = try open.call(
            "PATCH", "/manage/servers/b2", body: #"{"weight": 2}"#, headers: [("Authorization", "bearer s3cret-token")])
        XCTAssertEqual(lowercase.status, 200, "the scheme is case-insensitive")
        XCTAssertEqual(try authorized.call("DELETE", "/manage/servers/b2").status, 200)
    }
}

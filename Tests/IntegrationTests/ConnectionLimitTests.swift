import Foundation
import XCTest

/// `limits.max_client_connections` (per worker): a worker at its limit closes new connections at once, counts
/// them, and goes on serving the ones it holds and the ones that come once a slot is free. (A refused
/// connection once left its socket calling back into a freed object: the server would not survive this.)
final class ConnectionLimitTests: IntegrationTestCase {
    func testConnectionsOverTheLimitAreClosedAndCountedAndTheServerGoesOn() throws {
        let limit = 2
        let workers = Int(ProcessInfo.processInfo.environment["LB_TEST_WORKERS"] ?? "") ?? 1
        let backend = try LBBinaries.startDemoBackend(name: "b")
        let lb = try startProxy(backends: [backend.address], settings: ["limits": ["max_client_connections": limit]])
        let admin = AdminClient(port: lb.adminPort)
        // Open connections one by one: each is served and held, or closed at once because its worker is full.
        var held: [RawHTTPConnection] = []
        var refused = 0
        for i in 0..<(limit * workers + 8) {
            let c = try RawHTTPConnection(port: lb.proxyPort)
            if c.isClosedByPeer(timeout: 0.2) {
                refused += 1
                continue
            }
            // A refusal slower than the wait above shows as a connection closed without an answer.
            guard (try? c.send("GET /held/\(i) HTTP/1.1\r\nHost: t\r\n\r\n")) != nil,
                let response = try? c.readResponse()
            else {
                refused += 1
                continue
            }
            XCTAssertEqual(response.status, 200, "an accepted connection is served")
            held.append(c)
        }
        XCTAssertLessThanOrEqual(held.count, limit * workers, "no worker holds more than its limit")
        XCTAssertGreaterThanOrEqual(refused, 8, "every connection beyond the limits was refused")
        try eventually(timeout: 5, "connections.refused reaches \(refused)") {
            let stats = try admin.call("GET", "/api/stats").json
            return (stats["connections"] as? [String: Any])?["refused"] as? Int == refused
        }
        // The held connections still work; once they go, new clients are served.
        for c in held {
            try c.send("GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try c.readResponse().status, 200)
            c.close()
        }
        try eventually(timeout: 5, "freed slots serve new clients") {
            (try? HTTPClient.get(port: lb.proxyPort, path: "/after"))?.status == 200
        }
        XCTAssertTrue(lb.process.isRunning, "the server survived the refusals")
    }
}

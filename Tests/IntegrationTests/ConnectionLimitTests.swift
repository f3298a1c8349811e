import Foundation
import XCTest

/// `limits.max_client_connections`: a worker over its limit closes new connections at once, counts them, and
/// goes on serving the ones it holds and the ones that come once a slot is free. (A refused connection once
/// left its socket calling back into a freed object: this test would crash the server then.)
final class ConnectionLimitTests: IntegrationTestCase {
    func testConnectionsOverTheLimitAreClosedAndCountedAndTheServerGoesOn() throws {
        let backend = try LBBinaries.startDemoBackend(name: "b")
        let lb = try startProxy(backends: [backend.address], settings: ["limits": ["max_client_connections": 2]])
        let admin = AdminClient(port: lb.adminPort)
        let held = try (0..<2).map { i -> RawHTTPConnection in
            let c = try RawHTTPConnection(port: lb.proxyPort)
            try c.send("GET /held/\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try c.readResponse().status, 200)
            return c
        }
        for _ in 0..<5 {
            let refused = try RawHTTPConnection(port: lb.proxyPort)
            XCTAssertTrue(refused.isClosedByPeer(timeout: 3), "a connection over the limit is closed at once")
        }
        try eventually(timeout: 5, "connections.refused reaches 5") {
            let stats = try admin.call("GET", "/api/stats").json
            return (stats["connections"] as? [String: Any])?["refused"] as? Int == 5
        }
        // The held connections still work; once one goes, a new client is served.
        try held[0].send("GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try held[0].readResponse().status, 200)
        held[1].close()
        try eventually(timeout: 5, "a freed slot serves a new client") {
            (try? HTTPClient.get(port: lb.proxyPort, path: "/after"))?.status == 200
        }
        XCTAssertTrue(lb.process.isRunning, "the server survived the refusals")
    }
}

import Foundation
import XCTest

/// An HTTP/1.1 connection holds a request state (parser, exchange, buffers) only while it reads or answers a
/// request: `connections.http1_active` counts those, and falls back to zero once the responses are complete even
/// though every connection stays open.
final class IdleConnectionStateTests: IntegrationTestCase {
    private func connections(_ admin: AdminClient) throws -> (open: Int, active: Int) {
        let c = try admin.call("GET", "/api/stats").json["connections"] as? [String: Any] ?? [:]
        return (c["open"] as? Int ?? -1, c["http1_active"] as? Int ?? -1)
    }

    func testOnlyConnectionsWithARequestUnderWayHoldARequestState() throws {
        let n = 100
        let backend = try LBBinaries.startDemoBackend(name: "slow", delayMs: 1500)
        let lb = try startProxy(backends: [backend.address])
        let admin = AdminClient(port: lb.adminPort)
        let clients = try (0..<n).map { _ in try RawHTTPConnection(port: lb.proxyPort, timeout: 10) }
        defer { for c in clients { c.close() } }

        // Every request in flight at once: each connection holds a state.
        for (i, c) in clients.enumerated() { try c.send("GET /idle/\(i) HTTP/1.1\r\nHost: idle\r\n\r\n") }
        try eventually(timeout: 1.4, "all \(n) requests under way") { try self.connections(admin) == (n, n) }
        for (i, c) in clients.enumerated() {
            XCTAssertEqual(try c.readResponse().status, 200, "request \(i)")
        }
        // Answered, kept alive, idle: none holds one.
        try eventually(timeout: 5, "every answered connection gave its state back") {
            try self.connections(admin) == (n, 0)
        }

        // Half a head is a request under way; its end is answered on the same connection as before.
        for c in clients.prefix(10) { try c.send("GET /idle/again HTTP/1.1\r\nHo") }
        try eventually(timeout: 5, "10 partial heads hold a state") { try self.connections(admin) == (n, 10) }
        for c in clients.prefix(10) { try c.send("st: idle\r\n\r\n") }
        for c in clients.prefix(10) { XCTAssertEqual(try c.readResponse().status, 200) }
        try eventually(timeout: 5, "given back again") { try self.connections(admin) == (n, 0) }

        // Two pipelined requests in one write: the state stays until the second is answered, in order.
        try clients[0].send("GET /p/1 HTTP/1.1\r\nHost: idle\r\n\r\nGET /p/2 HTTP/1.1\r\nHost: idle\r\n\r\n")
        try eventually(timeout: 1.4, "the pipelined pair holds one state") { try self.connections(admin) == (n, 1) }
        XCTAssertEqual(try clients[0].readResponse().status, 200)
        XCTAssertEqual(try clients[0].readResponse().status, 200)
        try eventually(timeout: 5, "and gives it back") { try self.connections(admin) == (n, 0) }
    }
}

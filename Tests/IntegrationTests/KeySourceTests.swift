import Foundation
import XCTest

/// Each routing key source through the real proxy: the same key reaches the same backend whatever else in
/// the request changes, different keys spread over the backends, and an absent key falls back to the path.
final class KeySourceTests: IntegrationTestCase {
    private func start(key: String) throws -> LBServerProcess {
        let backends = try (1...3).map { try LBBinaries.startDemoBackend(name: "b\($0)") }
        return try LBBinaries.startServer(backends: backends.map(\.address), extraArguments: ["--key", key])
    }

    /// Sends `count` requests for one key value built by `request(value, variation)`; returns the backends seen.
    private func backends(
        _ lb: LBServerProcess, value: String, variations: Int = 6, _ request: (String, Int) -> String
    ) throws -> Set<String> {
        let c = try RawHTTPConnection(port: lb.proxyPort)
        var seen = Set<String>()
        for v in 0..<variations {
            try c.send(request(value, v))
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200)
            seen.insert(r.header("X-Backend") ?? "?")
        }
        return seen
    }

    private func assertAffinityAndSpread(key: String, _ request: @escaping (String, Int) -> String) throws {
        let lb = try start(key: key)
        var all = Set<String>()
        for user in 0..<30 {
            let seen = try backends(lb, value: "user-\(user)", request)
            XCTAssertEqual(seen.count, 1, "key \(key) value user-\(user) went to \(seen)")
            all.formUnion(seen)
        }
        XCTAssertEqual(all, ["b1", "b2", "b3"], "30 keys spread over every backend")
    }

    func testHeaderKeyKeepsAffinityAcrossPaths() throws {
        try assertAffinityAndSpread(key: "header:X-User") { v, i in
            "GET /p/\(i) HTTP/1.1\r\nHost: h\r\nx-user: \(v)\r\n\r\n"
        }
    }

    func testCookieKeyKeepsAffinityAcrossPaths() throws {
        try assertAffinityAndSpread(key: "cookie:session") { v, i in
            "GET /c/\(i) HTTP/1.1\r\nHost: h\r\nCookie: theme=dark\(i); session=\(v); lang=en\r\n\r\n"
        }
    }

    func testQueryKeyKeepsAffinityAcrossPaths() throws {
        try assertAffinityAndSpread(key: "query:user") { v, i in
            "GET /q/\(i)?a=\(i)&user=\(v)&z=1 HTTP/1.1\r\nHost: h\r\n\r\n"
        }
    }

    func testHostKeyKeepsAffinityAcrossPaths() throws {
        try assertAffinityAndSpread(key: "host") { v, i in
            "GET /h/\(i) HTTP/1.1\r\nHost: \(v).example\r\n\r\n"
        }
    }

    func testURIKeyDistinguishesQueries() throws {
        let lb = try start(key: "uri")
        var spread = Set<String>()
        for q in 0..<30 {
            let seen = try backends(lb, value: "\(q)") { v, _ in "GET /same?v=\(v) HTTP/1.1\r\nHost: h\r\n\r\n" }
            XCTAssertEqual(seen.count, 1)
            spread.formUnion(seen)
        }
        XCTAssertEqual(spread.count, 3, "the query is part of the key")
    }

    func testPathKeyIgnoresTheQuery() throws {
        let lb = try start(key: "path")
        let seen = try backends(lb, value: "", variations: 12) { _, i in "GET /one/path?n=\(i) HTTP/1.1\r\nHost: h\r\n\r\n" }
        XCTAssertEqual(seen.count, 1)
    }

    func testClientIPKeySendsOneClientToOneBackend() throws {
        let lb = try start(key: "client-ip")
        let seen = try backends(lb, value: "", variations: 20) { _, i in "GET /ip/\(i) HTTP/1.1\r\nHost: h\r\n\r\n" }
        XCTAssertEqual(seen.count, 1, "every request from 127.0.0.1 goes to one backend")
    }

    func testAbsentHeaderFallsBackToThePath() throws {
        let lb = try start(key: "header:X-User")
        for i in 0..<10 {
            // No X-User: the path decides, so the same path keeps its backend and paths spread.
            let seen = try backends(lb, value: "", variations: 3) { _, _ in "GET /fallback/\(i) HTTP/1.1\r\nHost: h\r\n\r\n" }
            XCTAssertEqual(seen.count, 1)
        }
        var spread = Set<String>()
        for i in 0..<30 {
            spread.formUnion(try backends(lb, value: "", variations: 1) { _, _ in "GET /spread/\(i) HTTP/1.1\r\nHost: h\r\n\r\n" })
        }
        XCTAssertEqual(spread.count, 3)
    }
}

@testable import LBServer
import LBHTTP
import XCTest

/// Field lookup by name and the path a routing key hashes, on heads from the real parser.
final class RoutingKeyTests: XCTestCase {
    private func head(_ text: String) throws -> HTTPHead {
        var parser = HTTPParser(kind: .request)
        let bytes = Array(text.utf8)
        var pos = 0
        let event = bytes.withUnsafeBytes { parser.next($0, &pos) }
        XCTAssertEqual(event, .head)
        return parser.head
    }

    func testFieldLookupByNameIgnoresCase() throws {
        let h = try head("GET / HTTP/1.1\r\nHost: a\r\nX-User: alice\r\nAUTHORIZATION: Bearer t\r\n\r\n")
        XCTAssertEqual(h.value(named: "x-user".utf8).map(h.string), "alice")
        XCTAssertEqual(h.value(named: "Authorization".utf8).map(h.string), "Bearer t")
        XCTAssertNil(h.value(named: "x-use".utf8))
    }

    func testPathStopsAtTheQueryInOriginForm() throws {
        let h = try head("GET /a/b?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        let path = h.bytes.withUnsafeBytes { RoutingKey.pathRange($0, h) }
        XCTAssertEqual(h.string(path), "/a/b")
    }

    func testPathStartsAfterTheAuthorityInAbsoluteForm() throws {
        let h = try head("GET http://a.example:8080/a/b?x=1 HTTP/1.1\r\nHost: a.example:8080\r\n\r\n")
        let path = h.bytes.withUnsafeBytes { RoutingKey.pathRange($0, h) }
        XCTAssertEqual(h.string(path), "/a/b")
    }
}

import XCTest

@testable import LBServer

final class HTTPParserRequestTests: XCTestCase {
    func testParsesSimpleGet() throws {
        let r = assertFeeds(.request, bytes("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"))
        XCTAssertEqual(r.events.count, 2)
        let h = try XCTUnwrap(r.firstHead)
        XCTAssertEqual(h.method, .get)
        XCTAssertEqual(h.target, "/index.html?q=1")
        XCTAssertEqual(h.versionMinor, 1)
        XCTAssertEqual(h.host, "example.com")
        XCTAssertEqual(h.framing, HTTPFraming.none)
        XCTAssertTrue(h.keepAlive)
        XCTAssertEqual(h.fields, ["Host: example.com", "Accept: */*"])
        XCTAssertEqual(r.events.last, .end)
    }
}

import XCTest

@testable import LBHTTP

/// A field only the proxy sets (a client certificate's subject): the client's copies never reach the backend.
final class OwnedRequestFieldTests: XCTestCase {
    private let subject = OwnedRequestField(name: "X-Client-Subject")!

    private func forward(_ s: String, owned: OwnedRequestField?, secure: Bool = true) -> String {
        var parser = HTTPParser(kind: .request)
        var pos = 0
        XCTAssertEqual(Array(s.utf8).withUnsafeBytes { parser.next($0, &pos) }, .head, s)
        var out: [UInt8] = []
        Array("10.0.0.9".utf8).withUnsafeBytes {
            _ = HeadWriter.writeRequest(
                parser.head, clientAddress: $0, requestID: 1, options: ForwardingOptions(requestID: false),
                secure: secure, owned: owned, into: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    func testTheClientsFieldsOfTheNameAreDroppedInAnyCaseAndTheProxysLineIsAdded() {
        let out = forward(
            "GET / HTTP/1.1\r\nHost: h\r\nx-client-subject: CN=forged\r\nAccept: */*\r\nX-CLIENT-SUBJECT:CN=two\r\n"
                + "X-Client-Subject-Other: kept\r\nX-Client-Subjec: kept\r\n\r\n",
            owned: subject.with(value: Array("CN=alice,O=Example".utf8)))
        XCTAssertEqual(
            out,
            "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Client-Subject-Other: kept\r\nX-Client-Subjec: kept\r\n"
                + "X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n"
                + "X-Client-Subject: CN=alice,O=Example\r\n\r\n")
    }

    /// No certificate on the connection: a client claiming one gets its field dropped and nothing added.
    func testWithoutAValueTheClientsFieldsAreDroppedAndNothingIsAdded() {
        let out = forward(
            "GET / HTTP/1.1\r\nX-Client-Subject: CN=admin\r\nHost: h\r\n\r\n", owned: subject.withoutValue)
        XCTAssertFalse(out.lowercased().contains("x-client-subject"), out)
        XCTAssertTrue(out.hasPrefix("GET / HTTP/1.1\r\nHost: h\r\n"), out)
    }

    /// Without an owned field (no `subject_header`), the proxy takes no position on the name.
    func testWithoutAnOwnedFieldTheClientsFieldPassesThrough() {
        let out = forward("GET / HTTP/1.1\r\nHost: h\r\nX-Client-Subject: CN=whatever\r\n\r\n", owned: nil)
        XCTAssertTrue(out.contains("\r\nX-Client-Subject: CN=whatever\r\n"), out)
    }

    func testTheForwardedHeadReparsesWithTheFieldOnce() throws {
        let out = forward(
            "POST / HTTP/1.1\r\nHost: h\r\nX-Client-Subject: a\r\nContent-Length: 2\r\n\r\n",
            owned: subject.with(value: Array("CN=x".utf8)))
        var parser = HTTPParser(kind: .request)
        var pos = 0
        XCTAssertEqual(Array(out.utf8).withUnsafeBytes { parser.next($0, &pos) }, .head)
        let head = parser.head
        let values = head.fields.filter { head.string($0.name).lowercased() == "x-client-subject" }
            .map { head.string($0.value) }
        XCTAssertEqual(values, ["CN=x"])
        XCTAssertEqual(head.framing, .contentLength(2))
    }

    /// The value can never end the line or the head: control bytes, DEL and non-ASCII become `\XX`.
    func testValueBytesOutsidePrintableASCIIAreEscaped() {
        let value: [UInt8] =
            Array("CN=a".utf8) + [0x0D, 0x0A] + Array("X-Admin: 1".utf8) + [0x00, 0x7F, 0xC3, 0xAB, 0x09]
        let field = subject.with(value: value)
        XCTAssertEqual(
            String(decoding: field.line, as: UTF8.self),
            #"X-Client-Subject: CN=a\0D\0AX-Admin: 1\00\7F\C3\AB\09"# + "\r\n")
        XCTAssertEqual(String(decoding: subject.with(value: []).line, as: UTF8.self), "X-Client-Subject: \r\n")
        XCTAssertEqual(
            String(decoding: subject.with(value: Array(#"CN=Zo\C3\AB \"Z\",O=a\,b"#.utf8)).line, as: UTF8.self),
            #"X-Client-Subject: CN=Zo\C3\AB \"Z\",O=a\,b"# + "\r\n", "printable ASCII, backslashes included, is kept")
    }

    func testNamesTheProxyHandlesItselfOrThatAreNotTokensCannotBeOwned() {
        for name in ["Host", "content-length", "Transfer-Encoding", "CONNECTION", "Keep-Alive", "Proxy-Connection",
                     "TE", "Upgrade", "Trailer", "Expect", "X-Forwarded-For", "x-forwarded-proto", "X-Forwarded-Host",
                     "Forwarded", "X-Request-ID", "Cookie"] {
            let problem = OwnedRequestField.problem(withName: name)
            XCTAssertTrue(problem?.contains("handles itself") ?? false, "\(name): \(problem ?? "accepted")")
            XCTAssertNil(OwnedRequestField(name: name), name)
        }
        for name in ["X Client", "X-Client:", "Zoë", "a\r\nb", "(x)"] {
            let problem = OwnedRequestField.problem(withName: name)
            XCTAssertTrue(problem?.contains("is not an HTTP field name") ?? false, "\(name): \(problem ?? "accepted")")
        }
        XCTAssertEqual(OwnedRequestField.problem(withName: ""), "must not be empty")
        for name in ["X-Client-Subject", "ssl-client-s-dn", "X-SSL-Client-DN", "x_client~cert"] {
            XCTAssertNil(OwnedRequestField.problem(withName: name), name)
        }
    }

    func testForwardingWithAnOwnedFieldDoesNotReallocateWhenCapacitySuffices() {
        var parser = HTTPParser(kind: .request)
        var pos = 0
        let s = "GET / HTTP/1.1\r\nHost: h\r\nX-Client-Subject: CN=forged\r\n\r\n"
        XCTAssertEqual(Array(s.utf8).withUnsafeBytes { parser.next($0, &pos) }, .head)
        let head = parser.head
        let owned = subject.with(value: Array("CN=alice".utf8))
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        let base = out.withUnsafeBufferPointer { $0.baseAddress }
        _ = Array("1.2.3.4".utf8).withUnsafeBytes {
            HeadWriter.writeRequest(
                head, clientAddress: $0, requestID: 1, options: ForwardingOptions(), secure: true, owned: owned,
                into: &out)
        }
        XCTAssertEqual(out.withUnsafeBufferPointer { $0.baseAddress }, base)
    }
}

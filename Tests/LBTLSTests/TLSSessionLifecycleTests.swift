import LBTLS
import XCTest

/// Closing, failing, and calls made at the wrong time.
final class TLSSessionLifecycleTests: TLSTestCase {
    func testCloseNotifyReadsAsClosedAfterThePlaintextBeforeIt() throws {
        let connection = try connect(context())
        connection.handshake()
        connection.client.write(Array("bye".utf8))
        connection.client.shutdown()
        connection.pump()
        XCTAssertEqual(connection.serverReceived, Array("bye".utf8))
        XCTAssertEqual(connection.serverResult, .closed)

        // Half-close: the server may still finish what it was sending, then closes its side.
        connection.serverSends(Array("last words".utf8))
        XCTAssertEqual(connection.client.received, Array("last words".utf8))
        connection.server.shutdown()
        connection.pump()
        XCTAssertTrue(connection.client.sawCloseNotify)
    }

    func testServerShutdownSendsCloseNotify() throws {
        let connection = try connect(context())
        connection.handshake()
        connection.server.shutdown()
        XCTAssertTrue(connection.server.hasCiphertext)
        connection.pump()
        XCTAssertTrue(connection.client.sawCloseNotify)
    }

    func testGarbageCiphertextFailsWithAReason() throws {
        let session = try TLSSession(context: context())
        let garbage: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef]
        garbage.withUnsafeBytes { session.feed(ciphertext: $0) }
        var plaintext: [UInt8] = []
        guard case .failed(let error) = session.readPlaintext(into: &plaintext) else {
            return XCTFail("garbage should fail the session")
        }
        XCTAssertNotNil(error.reason)
        XCTAssertFalse(error.isPlaintextHTTP)
        XCTAssertTrue(error.description.hasPrefix("TLS failed: "), error.description)
        XCTAssertEqual(plaintext, [])
    }

    func testPlainHTTPOnTheTLSPortIsRecognised() throws {
        let session = try TLSSession(context: context())
        Array("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".utf8).withUnsafeBytes { session.feed(ciphertext: $0) }
        var plaintext: [UInt8] = []
        guard case .failed(let error) = session.readPlaintext(into: &plaintext) else {
            return XCTFail("plain HTTP should fail the session")
        }
        XCTAssertTrue(error.isPlaintextHTTP, error.description)
    }

    func testTamperedRecordAfterTheHandshakeFails() throws {
        let connection = try connect(context())
        connection.handshake()
        connection.client.write(Array("secret".utf8))
        var record = connection.client.takeCiphertext()
        record[record.count - 1] ^= 0x01
        record.withUnsafeBytes { connection.server.feed(ciphertext: $0) }
        var plaintext: [UInt8] = []
        guard case .failed(let error) = connection.server.readPlaintext(into: &plaintext) else {
            return XCTFail("a tampered record should fail the session")
        }
        XCTAssertEqual(plaintext, [])
        XCTAssertNotNil(error.reason, error.description)
        XCTAssertTrue(connection.server.hasCiphertext, "the alert to send before closing")
    }

    func testIncompleteInputWantsMore() throws {
        let connection = try connect(context())
        connection.client.drive()
        let hello = connection.client.takeCiphertext()
        hello[..<10].withUnsafeBytes { connection.server.feed(ciphertext: $0) }
        var plaintext: [UInt8] = []
        XCTAssertEqual(connection.server.readPlaintext(into: &plaintext), .wantMoreInput)
        XCTAssertFalse(connection.server.hasCiphertext)
    }

    func testWriteBeforeTheHandshakeWantsInputAndShutdownDoesNothing() throws {
        let session = try TLSSession(context: context())
        XCTAssertEqual(Array("early".utf8).withUnsafeBytes { session.writePlaintext($0) }, .wantMoreInput)
        session.shutdown()
        XCTAssertFalse(session.hasCiphertext)
        XCTAssertNil(session.protocolVersion)
        XCTAssertNil(session.cipherName)
        XCTAssertFalse(session.isHandshakeComplete)
    }

    func testEmptyWriteIsDone() throws {
        let connection = try connect(context())
        connection.handshake()
        XCTAssertEqual([UInt8]().withUnsafeBytes { connection.server.writePlaintext($0) }, .done)
        XCTAssertFalse(connection.server.hasCiphertext)
    }

    /// The session holds its context: dropping every other reference mid-connection keeps the callbacks valid.
    func testSessionKeepsItsContextAlive() throws {
        var context: TLSServerContext? = try self.context()
        weak let weakContext = context
        let connection = try connect(context!, .init(serverName: "a.test", alpn: ["http/1.1"]))
        context = nil
        XCTAssertNotNil(weakContext)
        connection.handshake()
        XCTAssertEqual(connection.server.negotiatedALPN, "http/1.1")
        XCTAssertEqual(connection.client.peerCommonName, "a.test")
    }
}

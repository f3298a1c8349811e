import COpenSSL
import LBTLS
import XCTest

final class TLSSessionDataTests: TLSTestCase {
    func testHandshakeThenPlaintextFlowsBothWays() throws {
        let connection = try connect(context(), .init(serverName: "a.test", verifyHost: "a.test"))
        connection.handshake()
        XCTAssertEqual(connection.server.protocolVersion, .tls1_3)
        XCTAssertNotNil(connection.server.cipherName)
        XCTAssertFalse(connection.server.isResumed)
        XCTAssertNil(connection.server.negotiatedALPN, "the client offered no ALPN")

        connection.client.write(Array("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".utf8))
        connection.pump()
        XCTAssertEqual(
            String(decoding: connection.serverReceived, as: UTF8.self), "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        XCTAssertEqual(connection.serverResult, .progress)

        connection.serverSends(Array("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".utf8))
        XCTAssertEqual(
            String(decoding: connection.client.received, as: UTF8.self), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    }

    /// An idle connection gives its record buffers back between requests; the next request and response still
    /// flow, in both directions, several times over.
    func testReleasingTheBuffersBetweenRequestsKeepsTheConnectionWorking() throws {
        let connection = try connect(context(), .init(serverName: "a.test", verifyHost: "a.test"))
        connection.handshake()
        for i in 0..<3 {
            connection.server.releaseBuffers()
            let request = Array("GET /\(i) HTTP/1.1\r\nHost: a.test\r\n\r\n".utf8)
            connection.serverReceived.removeAll()
            connection.client.write(request)
            connection.pump()
            XCTAssertEqual(connection.serverReceived, request, "#\(i)")
            connection.server.releaseBuffers()
            let before = connection.client.received.count
            let response = Array("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n\(i)".utf8)
            connection.serverSends(response)
            XCTAssertEqual(Array(connection.client.received[before...]), response, "#\(i)")
        }
    }

    func testOneMebibyteEachWayArrivesIntact() throws {
        let connection = try connect(context(), .init(serverName: "a.test"))
        connection.handshake()
        let upload = (0..<1 << 20).map { _ in UInt8.random(in: 0...255) }
        let download = (0..<1 << 20).map { _ in UInt8.random(in: 0...255) }

        connection.client.write(upload)
        connection.pump()
        XCTAssertEqual(connection.serverReceived.count, upload.count)
        XCTAssertEqual(sha256(connection.serverReceived), sha256(upload))

        connection.serverSends(download)
        XCTAssertEqual(connection.client.received.count, download.count)
        XCTAssertEqual(sha256(connection.client.received), sha256(download))
    }

    /// The socket may split ciphertext anywhere: one byte at a time must give the same handshake and bytes.
    func testCiphertextArrivingOneByteAtATimeGivesTheSameResult() throws {
        let connection = try connect(context(), .init(serverName: "x.b.test", verifyHost: "x.b.test"))
        connection.feedChunk = 1
        connection.handshake()
        let message = Array("one byte at a time".utf8)
        connection.client.write(message)
        connection.pump()
        XCTAssertEqual(connection.serverReceived, message)
    }

    func testTLS12HandshakeAndData() throws {
        let connection = try connect(context(), .init(serverName: "a.test", maxVersion: TLS1_2_VERSION))
        connection.handshake()
        XCTAssertEqual(connection.server.protocolVersion, .tls1_2)
        XCTAssertEqual(connection.client.version, TLS1_2_VERSION)
        connection.client.write(Array("ping".utf8))
        connection.pump()
        XCTAssertEqual(connection.serverReceived, Array("ping".utf8))
        connection.serverSends(Array("pong".utf8))
        XCTAssertEqual(connection.client.received, Array("pong".utf8))
    }

    /// The client trusts only the root, so verification succeeds only if the intermediate from the chain file
    /// is sent after the leaf.
    func testChainFileSendsItsIntermediate() throws {
        let connection = try connect(context(), .init(serverName: "chain.test", verifyHost: "chain.test"))
        connection.handshake()
        XCTAssertEqual(connection.client.peerCommonName, "chain.test")
    }

    /// Plaintext arriving in the same flight as the client's Finished is handed up by that same read.
    func testDataInTheClientsLastHandshakeFlightIsReadAtOnce() throws {
        let connection = try connect(context(), .init(serverName: "a.test", maxVersion: TLS1_3_VERSION))
        connection.client.drive()
        connection.client.takeCiphertext().withUnsafeBytes { connection.server.feed(ciphertext: $0) }
        var ignored: [UInt8] = []
        XCTAssertEqual(connection.server.readPlaintext(into: &ignored), .wantMoreInput)
        var toClient: [UInt8] = []
        connection.server.takeCiphertext(into: &toClient)
        connection.client.feed(toClient)
        connection.client.drive()
        XCTAssertTrue(connection.client.isHandshakeComplete)
        connection.client.write(Array("early".utf8))
        connection.client.takeCiphertext().withUnsafeBytes { connection.server.feed(ciphertext: $0) }
        var plaintext: [UInt8] = []
        XCTAssertEqual(connection.server.readPlaintext(into: &plaintext), .progress)
        XCTAssertEqual(plaintext, Array("early".utf8))
        XCTAssertTrue(connection.server.isHandshakeComplete)
        XCTAssertTrue(connection.server.hasCiphertext, "TLS 1.3: the session ticket is written during the read")
    }
}

import COpenSSL
import LBTLS
import XCTest

/// lb's client side (`TLSClientContext`, `TLSClientSession`) against lb's server side, both without I/O: ciphertext is
/// carried between the two in memory, so each test is deterministic and needs no socket.
final class TLSClientSessionTests: TLSTestCase {
    /// Runs the handshake (and anything after it) until neither side has ciphertext to pass on. Returns the client's
    /// last read result.
    @discardableResult
    private func pump(_ client: TLSClientSession, _ server: TLSSession, into plaintext: inout [UInt8]) -> TLSReadResult {
        var serverPlain: [UInt8] = []
        var last = client.readPlaintext(into: &plaintext)  // the ClientHello
        for _ in 0..<20 {
            var toServer: [UInt8] = []
            client.takeCiphertext(into: &toServer)
            if !toServer.isEmpty {
                toServer.withUnsafeBytes { server.feed(ciphertext: $0) }
                if case .failed = server.readPlaintext(into: &serverPlain) { /* the alert still goes back */ }
            }
            var toClient: [UInt8] = []
            server.takeCiphertext(into: &toClient)
            if toServer.isEmpty && toClient.isEmpty { break }
            if !toClient.isEmpty {
                toClient.withUnsafeBytes { client.feed(ciphertext: $0) }
                last = client.readPlaintext(into: &plaintext)
            }
        }
        return last
    }

    private func clientContext(
        caFile: String? = nil, verify: Bool = true, certificate: TLSCertificateFiles? = nil, reuse: Bool = true
    ) throws -> TLSClientContext {
        try TLSClientContext(
            config: TLSClientConfig(
                caFile: caFile ?? certificates.caFile, verify: verify, clientCertificate: certificate,
                sessionReuse: reuse))
    }

    func testHandshakeVerifiesTheChainAndNameAndCarriesDataBothWays() throws {
        let server = try TLSSession(context: try context())
        let client = try TLSClientSession(
            context: try clientContext(), serverName: "a.test", verifyName: "a.test", cache: nil)
        var plain: [UInt8] = []
        pump(client, server, into: &plain)
        XCTAssertTrue(client.isHandshakeComplete)
        XCTAssertTrue(server.isHandshakeComplete)
        XCTAssertEqual(server.serverName, "a.test", "SNI was sent")
        XCTAssertEqual(client.negotiatedALPN, "http/1.1")
        XCTAssertEqual(client.protocolVersion, .tls1_3)

        XCTAssertEqual(Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { client.writePlaintext($0) }, .done)
        var wire: [UInt8] = []
        client.takeCiphertext(into: &wire)
        wire.withUnsafeBytes { server.feed(ciphertext: $0) }
        var request: [UInt8] = []
        XCTAssertEqual(server.readPlaintext(into: &request), .progress)
        XCTAssertEqual(String(decoding: request, as: UTF8.self), "GET / HTTP/1.1\r\n\r\n")
    }

    func testAWrongNameIsACertificateRejection() throws {
        let server = try TLSSession(context: try context())
        let client = try TLSClientSession(
            context: try clientContext(), serverName: "a.test", verifyName: "other.test", cache: nil)
        var plain: [UInt8] = []
        guard case .failed(let error) = pump(client, server, into: &plain) else {
            return XCTFail("the handshake must fail")
        }
        XCTAssertTrue(error.isCertificateRejected, "\(error)")
        XCTAssertTrue(error.description.contains("certificate verification failed"), error.description)
        XCTAssertFalse(client.isHandshakeComplete)
    }

    func testAnUntrustedChainIsRejectedUnlessVerificationIsOff() throws {
        // The system's trust store does not know the test CA.
        let system = try TLSClientContext(config: TLSClientConfig(caFile: nil))
        let client = try TLSClientSession(context: system, serverName: "a.test", verifyName: "a.test", cache: nil)
        var plain: [UInt8] = []
        guard case .failed(let error) = pump(client, try TLSSession(context: try context()), into: &plain) else {
            return XCTFail("the handshake must fail")
        }
        XCTAssertTrue(error.isCertificateRejected, "\(error)")

        let unverified = try TLSClientSession(
            context: try TLSClientContext(config: TLSClientConfig(caFile: nil, verify: false)),
            serverName: "a.test", verifyName: "a.test", cache: nil)
        pump(unverified, try TLSSession(context: try context()), into: &plain)
        XCTAssertTrue(unverified.isHandshakeComplete)
    }

    func testTheCacheResumesTheNextConnectionAfterACleanClose() throws {
        let serverContext = try context()
        let clientContext = try clientContext()
        let cache = TLSClientSessionCache()
        var resumed: [Bool] = []
        for _ in 0..<3 {
            let client = try TLSClientSession(
                context: clientContext, serverName: "a.test", verifyName: "a.test", cache: cache)
            var plain: [UInt8] = []
            pump(client, try TLSSession(context: serverContext), into: &plain)
            XCTAssertTrue(client.isHandshakeComplete)
            resumed.append(client.isResumed)
            client.shutdown()  // close_notify: OpenSSL keeps a session resumable only after a clean close
        }
        XCTAssertEqual(resumed, [false, true, true])

        // A connection dropped without close_notify spoils its session: the next one is a full handshake again.
        do {
            let dropped = try TLSClientSession(
                context: clientContext, serverName: "a.test", verifyName: "a.test", cache: cache)
            var plain: [UInt8] = []
            pump(dropped, try TLSSession(context: serverContext), into: &plain)
            XCTAssertTrue(dropped.isResumed)
        }
        let next = try TLSClientSession(context: clientContext, serverName: "a.test", verifyName: "a.test", cache: cache)
        var plain: [UInt8] = []
        pump(next, try TLSSession(context: serverContext), into: &plain)
        XCTAssertTrue(next.isHandshakeComplete)
        XCTAssertFalse(next.isResumed)

        // Without reuse nothing is kept, whatever cache is passed.
        let noReuse = try self.clientContext(reuse: false)
        let other = TLSClientSessionCache()
        for expected in [false, false] {
            let client = try TLSClientSession(context: noReuse, serverName: "a.test", verifyName: "a.test", cache: other)
            var plain: [UInt8] = []
            pump(client, try TLSSession(context: serverContext), into: &plain)
            XCTAssertEqual(client.isResumed, expected)
            client.shutdown()
        }
    }

    func testAnIPAddressIsCheckedAgainstTheCertificatesAddresses() throws {
        // None of the test certificates carries an IP address: verifying 127.0.0.1 must fail on the name.
        let client = try TLSClientSession(
            context: try clientContext(), serverName: nil, verifyName: "127.0.0.1", cache: nil)
        var plain: [UInt8] = []
        guard case .failed(let error) = pump(client, try TLSSession(context: try context()), into: &plain) else {
            return XCTFail("the handshake must fail")
        }
        XCTAssertTrue(error.isCertificateRejected, "\(error)")
        XCTAssertTrue(TLSClientSession.isIPAddress("::1"))
        XCTAssertTrue(TLSClientSession.isIPAddress("10.0.0.1"))
        XCTAssertFalse(TLSClientSession.isIPAddress("a.test"))
    }

    func testAMissingCAFileOrABadClientCertificateIsNamed() throws {
        XCTAssertThrowsError(try TLSClientContext(config: TLSClientConfig(caFile: "/nonexistent/ca.pem"))) { error in
            let e = error as? TLSConfigError
            XCTAssertEqual(e?.problem, .unreadableFile)
            XCTAssertEqual(e?.file, "/nonexistent/ca.pem")
        }
        let mismatched = TLSCertificateFiles(
            certificateChain: certificates.pair("a").certificateChain, privateKey: certificates.pair("rsa").privateKey)
        XCTAssertThrowsError(try clientContext(certificate: mismatched)) { error in
            XCTAssertEqual((error as? TLSConfigError)?.problem, .keyMismatch, "\(error)")
        }
    }
}

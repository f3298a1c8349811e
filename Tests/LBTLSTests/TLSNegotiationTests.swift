import COpenSSL
import LBTLS
import XCTest

/// ALPN and protocol versions.
final class TLSNegotiationTests: TLSTestCase {
    func testALPNChoosesHTTP1WhenTheClientOffersIt() throws {
        let connection = try connect(context(), .init(serverName: "a.test", alpn: ["h2", "http/1.1"]))
        connection.handshake()
        XCTAssertEqual(connection.server.negotiatedALPN, "http/1.1")
        XCTAssertEqual(connection.client.negotiatedALPN, "http/1.1")
    }

    func testALPNFollowsTheServersPreference() throws {
        let context = try context(config(alpn: ["h2", "http/1.1"]))
        let connection = try connect(context, .init(alpn: ["http/1.1", "h2"]))
        connection.handshake()
        XCTAssertEqual(connection.server.negotiatedALPN, "h2")
    }

    func testClientOfferingOnlyUnservedProtocolsIsRefused() throws {
        let connection = try connect(context(), .init(serverName: "a.test", alpn: ["h2"]))
        let error = connection.refusal()
        XCTAssertEqual(error?.reason, "no application protocol")
        XCTAssertTrue(
            connection.client.failure?.contains("no application protocol") ?? false, connection.client.failure ?? "")
    }

    func testClientWithoutALPNIsServedWithoutIt() throws {
        let connection = try connect(context())
        connection.handshake()
        XCTAssertNil(connection.server.negotiatedALPN)
    }

    func testNoALPNConfiguredIgnoresTheClientsOffer() throws {
        let connection = try connect(context(config(alpn: [])), .init(alpn: ["h2"]))
        connection.handshake()
        XCTAssertNil(connection.server.negotiatedALPN)
    }

    func testTLS11ClientIsRefused() throws {
        let connection = try connect(context(), .init(maxVersion: TLS1_1_VERSION, allowLegacy: true))
        XCTAssertEqual(connection.refusal()?.reason, "unsupported protocol")
    }

    func testTLS12OnlyClientIsServedWhenTheMinimumIs12() throws {
        let connection = try connect(context(config(minimumVersion: .tls1_2)), .init(maxVersion: TLS1_2_VERSION))
        connection.handshake()
        XCTAssertEqual(connection.server.protocolVersion, .tls1_2)
    }

    func testTLS12OnlyClientIsRefusedWhenTheMinimumIs13() throws {
        let connection = try connect(context(config(minimumVersion: .tls1_3)), .init(maxVersion: TLS1_2_VERSION))
        XCTAssertEqual(connection.refusal()?.reason, "unsupported protocol")
    }
}

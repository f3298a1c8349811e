import XCTest

@testable import LBTLS

final class TLSServerNameTests: TLSTestCase {
    func testServerNameChoosesTheCertificateNamingIt() throws {
        let connection = try connect(context(), .init(serverName: "a.test", verifyHost: "a.test"))
        connection.handshake()
        XCTAssertEqual(connection.client.peerCommonName, "a.test")
        XCTAssertEqual(connection.server.serverName, "a.test")
        XCTAssertEqual(connection.server.certificateIndex, 1)
    }

    func testWildcardCertificateCoversOneLabelInAnyCase() throws {
        let connection = try connect(context(), .init(serverName: "X.B.Test", verifyHost: "x.b.test"))
        connection.handshake()
        XCTAssertEqual(connection.client.peerCommonName, "*.b.test")
        XCTAssertEqual(connection.server.certificateIndex, 2)
    }

    func testUnknownServerNameGetsTheDefaultCertificate() throws {
        let connection = try connect(context(), .init(serverName: "c.test"))
        connection.handshake()
        XCTAssertEqual(connection.client.peerCommonName, "rsa.test")
        XCTAssertEqual(connection.server.serverName, "c.test")
        XCTAssertEqual(connection.server.certificateIndex, 0)
    }

    func testNoServerNameGetsTheDefaultCertificate() throws {
        let connection = try connect(context())
        connection.handshake()
        XCTAssertEqual(connection.client.peerCommonName, "rsa.test")
        XCTAssertNil(connection.server.serverName)
    }

    func testStrictSNIRefusesAnUnknownNameWithUnrecognizedName() throws {
        let connection = try connect(context(config(strictSNI: true)), .init(serverName: "c.test"))
        let error = connection.refusal()
        XCTAssertEqual(error?.refusedServerName, true)
        XCTAssertTrue(error?.description.contains("strict SNI") ?? false, error?.description ?? "")
        XCTAssertTrue(
            connection.client.failure?.contains("unrecognized name") ?? false, connection.client.failure ?? "")
    }

    func testStrictSNIRefusesAClientSendingNoName() throws {
        let connection = try connect(context(config(strictSNI: true)))
        XCTAssertEqual(connection.refusal()?.refusedServerName, true)
    }

    func testStrictSNIServesKnownNames() throws {
        let context = try context(config(strictSNI: true))
        for name in ["a.test", "y.b.test", "rsa.test"] {
            let connection = try connect(context, .init(serverName: name, verifyHost: name))
            connection.handshake()
        }
    }

    // MARK: the name table alone

    private let table = ServerNameTable(dnsNames: [
        ["default.test"], ["a.test", "*.b.test"], ["x.b.test"], ["f*.c.test", "*.*.d.test"], ["A.TEST"],
    ])

    func testWildcardMatchesExactlyOneLeftmostLabel() {
        XCTAssertEqual(table.certificate(for: "y.b.test"), 1)
        XCTAssertNil(table.certificate(for: "b.test"))
        XCTAssertNil(table.certificate(for: "z.y.b.test"))
        XCTAssertNil(table.certificate(for: ".b.test"))
    }

    func testExactNameWinsOverWildcard() {
        XCTAssertEqual(table.certificate(for: "x.b.test"), 2)
    }

    func testPartialAndMultipleWildcardsNeverMatch() {
        XCTAssertNil(table.certificate(for: "foo.c.test"))
        XCTAssertNil(table.certificate(for: "a.b.d.test"))
    }

    func testFirstCertificateWinsADuplicateNameAndCaseAndTrailingDotDoNotMatter() {
        XCTAssertEqual(table.certificate(for: "a.test"), 1)
        XCTAssertEqual(table.certificate(for: "A.Test."), 1)
        XCTAssertNil(table.certificate(for: ""))
    }
}

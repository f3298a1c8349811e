import COpenSSL
import LBTLS
import XCTest

/// Shared set-up for the TLS tests: the certificates and the usual server configuration.
class TLSTestCase: XCTestCase {
    var certificates: TestCertificates!

    override func setUpWithError() throws {
        certificates = try TestCertificates.get()
    }

    /// rsa.test (the default), a.test, *.b.test, chain.test (with its intermediate in the file).
    func config(
        strictSNI: Bool = false, minimumVersion: TLSProtocolVersion = .tls1_2, alpn: [String] = ["http/1.1"],
        sessionTickets: Bool = true, sessionCacheSize: Int = 1_000, clientCertificates: TLSClientCertificates? = nil
    ) -> TLSServerConfig {
        TLSServerConfig(
            certificates: ["rsa", "a", "wildcard", "chained"].map(certificates.pair), defaultCertificate: 0,
            strictSNI: strictSNI, minimumVersion: minimumVersion, alpnProtocols: alpn, sessionTickets: sessionTickets,
            sessionCacheSize: sessionCacheSize, clientCertificates: clientCertificates)
    }

    func context(_ config: TLSServerConfig? = nil) throws -> TLSServerContext {
        try TLSServerContext(config: config ?? self.config())
    }

    func connect(_ context: TLSServerContext, _ options: TestClient.Options = TestClient.Options()) throws
        -> TestConnection
    {
        try TestConnection(context, caFile: certificates.caFile, options)
    }

    func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        XCTAssertEqual(EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha256(), nil), 1)
        return digest
    }
}

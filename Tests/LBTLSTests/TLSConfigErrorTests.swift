import Foundation
import XCTest

@testable import LBTLS

/// Loading refuses bad files with a message naming the file and the problem.
final class TLSConfigErrorTests: TLSTestCase {
    private func loadError(_ files: TLSCertificateFiles, file: StaticString = #filePath, line: UInt = #line)
        -> TLSConfigError?
    {
        do {
            _ = try TLSServerContext(config: TLSServerConfig(certificates: [files]))
            XCTFail("loading \(files) should have failed", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func assertError(
        _ error: TLSConfigError?, _ problem: TLSConfigError.Problem, names path: String, says text: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let error else { return }
        XCTAssertEqual(error.problem, problem, error.description, file: file, line: line)
        XCTAssertEqual(error.file, path, file: file, line: line)
        XCTAssertTrue(error.description.contains(path), error.description, file: file, line: line)
        XCTAssertTrue(error.description.contains(text), error.description, file: file, line: line)
    }

    private func writeFile(_ name: String, _ text: String) throws -> String {
        let path = certificates.path(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testKeyOfAnotherCertificateIsAMismatchNamingTheKeyFile() throws {
        let files = TLSCertificateFiles(
            certificateChain: certificates.path("a.crt"), privateKey: certificates.path("wildcard.key"))
        let error = loadError(files)
        assertError(error, .keyMismatch, names: files.privateKey, says: "does not match")
        XCTAssertTrue(error?.description.contains(files.certificateChain) ?? false)
    }

    func testKeyOfAnotherTypeIsAMismatch() throws {
        let files = TLSCertificateFiles(
            certificateChain: certificates.path("a.crt"), privateKey: certificates.path("rsa.key"))
        assertError(loadError(files), .keyMismatch, names: files.privateKey, says: "does not match")
    }

    func testExpiredCertificateIsRefusedWithItsDate() throws {
        let files = certificates.pair("expired")
        assertError(loadError(files), .expired, names: files.certificateChain, says: "expired at 2020-02-01")
    }

    func testCertificateNotYetValidIsRefused() throws {
        let files = certificates.pair("future")
        assertError(loadError(files), .notYetValid, names: files.certificateChain, says: "not valid before 2099-01-01")
    }

    /// Validity is checked against the time given, so a certificate that is fine today fails a load dated
    /// after its notAfter.
    func testValidityIsCheckedAgainstTheLoadTime() throws {
        let config = TLSServerConfig(certificates: [certificates.pair("a")])
        let inSixtyDays = Int(Date().timeIntervalSince1970) + 60 * 86_400
        XCTAssertThrowsError(try TLSServerContext(config: config, now: inSixtyDays)) { error in
            XCTAssertEqual((error as? TLSConfigError)?.problem, .expired)
        }
        XCTAssertNoThrow(try TLSServerContext(config: config, now: inSixtyDays - 45 * 86_400))
    }

    func testMissingFileIsUnreadableWithTheSystemsReason() throws {
        let missing = certificates.path("no-such.crt")
        let files = TLSCertificateFiles(certificateChain: missing, privateKey: certificates.path("a.key"))
        assertError(loadError(files), .unreadableFile, names: missing, says: "No such file or directory")
        let missingKey = certificates.path("no-such.key")
        assertError(
            loadError(TLSCertificateFiles(certificateChain: certificates.path("a.crt"), privateKey: missingKey)),
            .unreadableFile, names: missingKey, says: "No such file or directory")
    }

    func testGarbageInsteadOfPEMHasNoCertificate() throws {
        let garbage = try writeFile("garbage.crt", "this is not a certificate\n")
        let files = TLSCertificateFiles(certificateChain: garbage, privateKey: certificates.path("a.key"))
        assertError(loadError(files), .noCertificate, names: garbage, says: "no PEM certificate")
    }

    func testDamagedPEMBlockHasNoCertificate() throws {
        let damaged = try writeFile(
            "damaged.crt", "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n")
        let files = TLSCertificateFiles(certificateChain: damaged, privateKey: certificates.path("a.key"))
        assertError(loadError(files), .noCertificate, names: damaged, says: "no PEM certificate")
    }

    func testDamagedChainCertificateAfterTheLeafIsReported() throws {
        let leaf = try String(contentsOfFile: certificates.path("a.crt"), encoding: .utf8)
        let damaged = try writeFile(
            "damaged-chain.crt", leaf + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        let files = TLSCertificateFiles(certificateChain: damaged, privateKey: certificates.path("a.key"))
        assertError(loadError(files), .noCertificate, names: damaged, says: "certificate 2 is damaged")
    }

    func testGarbageKeyFileHasNoPrivateKey() throws {
        let garbage = try writeFile("garbage.key", "not a key either\n")
        let files = TLSCertificateFiles(certificateChain: certificates.path("a.crt"), privateKey: garbage)
        assertError(loadError(files), .noPrivateKey, names: garbage, says: "no PEM private key")
    }

    func testNonDefaultCertificateWithoutDNSNamesCouldNeverBeChosen() throws {
        let config = TLSServerConfig(certificates: [certificates.pair("a"), certificates.pair("ca")])
        XCTAssertThrowsError(try TLSServerContext(config: config)) { error in
            assertError(error as? TLSConfigError, .noServerNames, names: certificates.path("ca.crt"), says: "SNI")
        }
        // As the default, it is fine: it serves every name the others do not cover.
        XCTAssertNoThrow(
            try TLSServerContext(
                config: TLSServerConfig(
                    certificates: [certificates.pair("a"), certificates.pair("ca")], defaultCertificate: 1)))
    }

    func testSettingsOutOfRangeAreRefusedBeforeAnyFileIsRead() throws {
        let pair = TLSCertificateFiles(certificateChain: "/nonexistent.crt", privateKey: "/nonexistent.key")
        let bad = [
            TLSServerConfig(certificates: []),
            TLSServerConfig(certificates: [pair], defaultCertificate: 1),
            TLSServerConfig(certificates: [pair], alpnProtocols: [""]),
            TLSServerConfig(certificates: [pair], sessionCacheSize: -1),
            TLSServerConfig(certificates: [pair], sessionLifetimeSeconds: 0),
        ]
        for config in bad {
            XCTAssertThrowsError(try TLSServerContext(config: config)) { error in
                XCTAssertEqual((error as? TLSConfigError)?.problem, .invalidSetting, "\(error)")
            }
        }
    }

    func testCertificateInfoReportsNamesIssuerDatesAndKey() throws {
        let context = try context()
        let rsa = context.certificates[0]
        XCTAssertEqual(rsa.dnsNames, ["rsa.test"])
        XCTAssertEqual(rsa.commonName, "rsa.test")
        XCTAssertEqual(rsa.keyType, "RSA")
        XCTAssertEqual(rsa.keyBits, 2048)
        XCTAssertEqual(rsa.chainLength, 0)
        let wildcard = context.certificates[2]
        XCTAssertEqual(wildcard.dnsNames, ["*.b.test"])
        XCTAssertEqual(wildcard.issuer, "CN=LB Test Root CA")
        XCTAssertEqual(wildcard.keyType, "EC")
        XCTAssertEqual(wildcard.keyBits, 256)
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertEqual(Double(wildcard.notAfter - now), 30 * 86_400, accuracy: 3_600)
        XCTAssertLessThanOrEqual(wildcard.notBefore, now)
        let chained = context.certificates[3]
        XCTAssertEqual(chained.issuer, "CN=LB Test Intermediate")
        XCTAssertEqual(chained.chainLength, 1)
    }
}

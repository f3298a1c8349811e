import Foundation
import LBTLS
import XCTest

/// Certificates for the TLS tests, made once per test process with the `openssl` command in a temporary
/// directory named for the process, removed when the process exits normally.
///
/// - an ECDSA P-256 root CA and an intermediate CA under it;
/// - `a`: EC, SAN a.test; `wildcard`: EC, SAN *.b.test; `rsa`: RSA 2048, SAN rsa.test (the default in most
///   tests); `chained`: EC, SAN chain.test, issued by the intermediate, file = leaf + intermediate;
/// - `expired` (2020) and `future` (2099): EC, SAN expired.test / future.test.
final class TestCertificates: Sendable {
    let directory: String
    var caFile: String { path("ca.crt") }

    func path(_ name: String) -> String { directory + "/" + name }
    func pair(_ name: String) -> TLSCertificateFiles {
        TLSCertificateFiles(certificateChain: path(name + ".crt"), privateKey: path(name + ".key"))
    }

    /// The shared set; skips the calling test when `openssl` is not installed, fails it when generation failed.
    static func get() throws -> TestCertificates {
        switch shared {
        case .success(let certificates): return certificates
        case .failure(.opensslMissing):
            throw XCTSkip("the `openssl` command is not on PATH; install the openssl package to run the TLS tests")
        case .failure(.commandFailed(let message)): throw SetupFailure(message: message)
        }
    }

    struct SetupFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    enum Failure: Error {
        case opensslMissing
        case commandFailed(String)
    }

    private static let shared: Result<TestCertificates, Failure> = {
        guard let openssl = findExecutable("openssl") else { return .failure(.opensslMissing) }
        let directory = directoryForThisProcess()
        do {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            atexit { try? FileManager.default.removeItem(atPath: TestCertificates.directoryForThisProcess()) }
            try generate(openssl: openssl, in: directory)
            return .success(TestCertificates(directory: directory))
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(.commandFailed("cannot prepare \(directory): \(error)"))
        }
    }()

    private init(directory: String) { self.directory = directory }

    private static func directoryForThisProcess() -> String { NSTemporaryDirectory() + "lb-tls-test-\(getpid())" }

    private static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }
}

import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

extension IntegrationTestCase {
    /// Raises this process's soft open-file limit to at least `needed` (up to the hard limit), before the test
    /// starts any process: a child inherits the limit, so a demo backend started afterwards can hold as many
    /// sockets too. (lb-server raises its own limit to the hard limit at start.)
    ///
    /// A test holding hundreds of sockets at once skips when the hard limit is below `needed`, on a developer's
    /// machine, and fails under CI, which must not pass by skipping.
    /// - Throws: `XCTSkip`, or `OpenFileLimitTooLow` under CI, when the limit cannot reach `needed`.
    func requireOpenFileLimit(_ needed: Int) throws {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            throw HarnessError.socket(call: "getrlimit(RLIMIT_NOFILE)", errno: errno)
        }
        if limit.rlim_cur >= rlim_t(needed) { return }
        if limit.rlim_max >= rlim_t(needed) {
            limit.rlim_cur = limit.rlim_max
            guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
                throw HarnessError.socket(call: "setrlimit(RLIMIT_NOFILE)", errno: errno)
            }
            return
        }
        let low = OpenFileLimitTooLow(hard: Int(limit.rlim_max), needed: needed, underCI: Self.runsUnderCI)
        if Self.runsUnderCI { throw low }
        throw XCTSkip(low.description)
    }
}

/// The hard open-file limit is below what a test needs.
struct OpenFileLimitTooLow: Error, CustomStringConvertible {
    let hard: Int
    let needed: Int
    let underCI: Bool
    var description: String {
        "the open-file hard limit is \(hard), below the \(needed) this test needs (raise it with `ulimit -Hn` or in "
            + "/etc/security/limits.conf)" + (underCI ? ". CI is set, so the test fails instead of skipping" : "")
    }
}

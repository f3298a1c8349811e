import Foundation

/// The sanitizer the binaries under test were built with, from `LB_TEST_SANITIZER`: `address` under
/// `make test-asan`, `thread` under `make test-tsan`; nil for an ordinary build.
///
/// AddressSanitizer keeps freed memory in quarantine (256 MiB by default) instead of reusing it, adds shadow
/// memory, and, like ThreadSanitizer, makes the binaries several times slower. A bound on lb's RSS or on a
/// client's latency then measures the instrumentation, not lb. Tests check such bounds only when `measuresResources`
/// is true; everything else they do (the traffic, the counters, the closes) runs either way.
enum Sanitizer {
    static let active: String? = {
        let value = ProcessInfo.processInfo.environment["LB_TEST_SANITIZER"] ?? ""
        return value.isEmpty ? nil : value
    }()

    /// False under a sanitizer: memory and latency bounds do not hold there (see above).
    static var measuresResources: Bool { active == nil }
}

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Something a test started that must not outlive it: a child process, a listening socket and its threads.
protocol TestResource: AnyObject, Sendable {
    /// Stops the resource. Must be idempotent and safe to call from any thread.
    func cleanUp()
    /// Called from `atexit` only: end the resource as fast as possible without waiting (e.g. SIGKILL a child).
    func cleanUpAtExit()
}

extension TestResource {
    func cleanUpAtExit() { cleanUp() }
}

/// Process-wide registry of live resources (habit 13: tests clean up every process and socket they start).
///
/// `ManagedProcess` and `SpyBackend` register themselves when they start and unregister when stopped.
/// `IntegrationTestCase.tearDown` cleans up everything still registered, and an `atexit` hook SIGKILLs leftover
/// children if the test binary exits without a tear-down (e.g. `XCTFail` in a setUp that throws, or `exit()`).
/// Not covered: the test binary being killed by a signal or crashing; children then become orphans.
final class TestResources: @unchecked Sendable {
    static let shared = TestResources()

    private let lock = NSLock()
    private var live: [ObjectIdentifier: TestResource] = [:]
    private var order: [ObjectIdentifier] = []

    private init() {
        // A child that exits while we write its stdin, or a peer that resets a socket, must fail one call, not kill
        // the whole test binary with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        atexit { TestResources.shared.cleanUpAllAtExit() }
    }

    func register(_ resource: TestResource) {
        lock.withLock {
            let id = ObjectIdentifier(resource)
            if live.updateValue(resource, forKey: id) == nil { order.append(id) }
        }
    }

    func unregister(_ resource: TestResource) {
        lock.withLock {
            let id = ObjectIdentifier(resource)
            live[id] = nil
            order.removeAll { $0 == id }
        }
    }

    /// Everything currently registered, oldest first.
    var all: [TestResource] {
        lock.withLock { order.compactMap { live[$0] } }
    }

    /// Cleans up every registered resource, newest first (a proxy stops before the backends it talks to).
    func cleanUpAll() {
        for resource in all.reversed() {
            resource.cleanUp()
            unregister(resource)
        }
    }

    private func cleanUpAllAtExit() {
        for resource in all.reversed() { resource.cleanUpAtExit() }
        LogFiles.removeDirectoryIfEmpty()
    }
}

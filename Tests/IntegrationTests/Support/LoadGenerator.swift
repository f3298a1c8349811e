import Foundation

/// Background load for "under load, nothing fails" tests: `threads` keep-alive clients, each sending GETs over
/// `paths` round-robin until stopped, recording every failure (a non-200 status or a broken connection) and
/// which backend answered each path last.
final class LoadGenerator: @unchecked Sendable {
    struct Failure: CustomStringConvertible {
        let path: String
        let detail: String
        var description: String { "\(path): \(detail)" }
    }

    private let port: Int
    private let paths: [String]
    private let state = Locked<(ok: Int, failures: [Failure], lastBackend: [String: String])>((0, [], [:]))
    private let running = Locked(true)
    private let finished = DispatchGroup()

    init(port: Int, paths: [String], threads: Int = 4) {
        self.port = port
        self.paths = paths
        // The threads are not kept: each one's block holds this object, so keeping them made a cycle that outlived
        // the test (LeakSanitizer reported it). A Thread is alive while it runs, and this object with it.
        for t in 0..<threads {
            finished.enter()
            let thread = Thread { [self] in
                run(offset: t * 7)
                finished.leave()
            }
            thread.start()
        }
    }

    private func run(offset: Int) {
        var connection: RawHTTPConnection?
        var i = offset
        while running.withLock({ $0 }) {
            let path = paths[i % paths.count]
            i += 1
            do {
                // An instrumented lb (`Sanitizer`) on busy cores can take seconds over one answer while it
                // rebuilds a routing table; slow is not failed, so the wait is longer there.
                if connection == nil {
                    connection = try RawHTTPConnection(port: port, timeout: Sanitizer.measuresResources ? 5 : 30)
                }
                try connection!.send("GET \(path) HTTP/1.1\r\nHost: load\r\n\r\n")
                let r = try connection!.readResponse()
                if r.status == 200 {
                    let backend = r.header("X-Backend") ?? "?"
                    state.withLock { $0.ok += 1; $0.lastBackend[path] = backend }
                } else {
                    state.withLock { $0.failures.append(Failure(path: path, detail: "status \(r.status): \(r.bodyString)")) }
                }
                if r.header("Connection")?.lowercased() == "close" {
                    connection?.close()
                    connection = nil
                }
            } catch {
                state.withLock { $0.failures.append(Failure(path: path, detail: "\(error)")) }
                connection?.close()
                connection = nil
            }
        }
        connection?.close()
    }

    var succeeded: Int { state.withLock { $0.ok } }
    var failures: [Failure] { state.withLock { $0.failures } }

    /// Waits until at least `count` more requests have succeeded (so a test knows load is really flowing).
    func waitForProgress(_ count: Int, timeout: TimeInterval = 10) throws {
        let target = succeeded + count
        try eventually(timeout: timeout, "load made progress") { self.succeeded >= target }
    }

    /// Stops every client and waits for them.
    func stop() {
        running.withLock { $0 = false }
        _ = finished.wait(timeout: .now() + 10)
    }
}

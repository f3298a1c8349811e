import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The client loop of the hand-off tests: `threads` clients that each open a connection, send a few keep-alive
/// requests on it (1 to 5), close it and open the next, until stopped or `limit` requests were sent. Every
/// outcome is counted: a refused connect, a reset or a connection closed before a complete response, any status
/// other than 200, and the requests that succeeded. A `Connection: close` answer (a draining process) is
/// obeyed: the client opens a new connection, as real clients do.
final class HandOffLoad: @unchecked Sendable {
    struct Counts: CustomStringConvertible {
        var ok = 0
        var connections = 0
        var refused = 0
        var reset = 0
        var failed = 0
        var closedByServer = 0
        var samples: [String] = []
        var description: String {
            "ok \(ok), connections \(connections), refused \(refused), reset \(reset), failed \(failed), "
                + "Connection: close \(closedByServer)" + (samples.isEmpty ? "" : "; first: \(samples.prefix(3))")
        }
    }

    private let port: Int
    private let limit: Int
    private let state = Locked(Counts())
    private let running = Locked(true)
    private let finished = DispatchGroup()

    init(port: Int, threads: Int = 3, limit: Int = 200_000) {
        self.port = port
        self.limit = limit
        for t in 0..<threads {
            finished.enter()
            let thread = Thread { [self] in
                run(seed: t)
                finished.leave()
            }
            thread.start()
        }
    }

    private func record(_ change: (inout Counts) -> Void) { state.withLock { change(&$0) } }

    private func run(seed: Int) {
        var n = seed
        while running.withLock({ $0 }) && state.withLock({ $0.ok + $0.failed }) < limit {
            let connection: RawHTTPConnection
            do {
                connection = try RawHTTPConnection(port: port, timeout: 5)
                record { $0.connections += 1 }
            } catch let HarnessError.socket(call, code) {
                record {
                    if code == ECONNREFUSED { $0.refused += 1 } else if code == ECONNRESET { $0.reset += 1 }
                    $0.failed += 1
                    $0.samples.append("\(call): errno \(code)")
                }
                continue
            } catch {
                record { $0.failed += 1; $0.samples.append("connect: \(error)") }
                continue
            }
            let requests = 1 + n % 5
            for _ in 0..<requests {
                n += 1
                do {
                    try connection.send("GET /handoff/\(n % 97) HTTP/1.1\r\nHost: load\r\n\r\n")
                    let r = try connection.readResponse()
                    if r.status == 200 {
                        record { $0.ok += 1 }
                    } else {
                        record { $0.failed += 1; $0.samples.append("status \(r.status): \(r.bodyString)") }
                    }
                    if r.header("Connection")?.lowercased() == "close" {
                        record { $0.closedByServer += 1 }
                        break
                    }
                } catch {
                    record {
                        $0.failed += 1
                        if connection.sawReset { $0.reset += 1 }
                        if case HarnessError.closedBeforeComplete = error { $0.reset += 1 }
                        $0.samples.append("\(error)")
                    }
                    break
                }
            }
            connection.close()
        }
    }

    var counts: Counts { state.withLock { $0 } }

    /// Waits until `count` more requests have succeeded.
    func waitForProgress(_ count: Int, timeout: TimeInterval = 10) throws {
        let target = counts.ok + count
        try eventually(timeout: timeout, "load made progress") { self.counts.ok >= target }
    }

    func stop() {
        running.withLock { $0 = false }
        _ = finished.wait(timeout: .now() + 10)
    }
}

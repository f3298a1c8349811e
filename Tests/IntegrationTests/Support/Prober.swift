import Foundation

/// An ordinary client running beside a hostile one: sequential GETs of `path`, one every `pause` seconds, each
/// timed from connect (or send, on a kept connection) to the complete response, recording every failure (a status
/// other than 200, a refused, reset or late connection). It says whether lb went on serving ordinary clients, and
/// how fast, while something else tried to wear it down.
final class Prober: @unchecked Sendable {
    struct Report: CustomStringConvertible {
        let count: Int
        let failures: [String]
        /// Latencies in seconds, sorted.
        let latencies: [Double]

        var p99: Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, latencies.count * 99 / 100)] }
        var max: Double { latencies.last ?? 0 }
        var description: String {
            String(format: "%d probes, %d failed, p99 %.1f ms, max %.1f ms", count, failures.count, p99 * 1000, max * 1000)
                + (failures.isEmpty ? "" : ": " + failures.prefix(5).joined(separator: "; "))
        }
    }

    private let port: Int
    private let path: String
    private let keepAlive: Bool
    private let pause: TimeInterval
    private let state = Locked<(latencies: [Double], failures: [String])>(([], []))
    private let running = Locked(true)
    private let finished = DispatchGroup()
    private var connection: RawHTTPConnection?

    /// Starts probing. With `keepAlive` the probes share one connection, opened here before this returns (so it
    /// exists before whatever the test does next); otherwise each probe opens its own.
    init(port: Int, path: String = "/probe", keepAlive: Bool = false, pause: TimeInterval = 0.005) throws {
        self.port = port
        self.path = path
        self.keepAlive = keepAlive
        self.pause = pause
        if keepAlive { connection = try RawHTTPConnection(port: port, timeout: 5) }
        finished.enter()
        let thread = Thread { [self] in
            run()
            finished.leave()
        }
        thread.start()
    }

    private func run() {
        var n = 0
        while running.withLock({ $0 }) {
            n += 1
            let started = Date()
            do {
                let c = try connection ?? RawHTTPConnection(port: port, timeout: 5)
                try c.send("GET \(path)/\(n) HTTP/1.1\r\nHost: probe\r\n" + (keepAlive ? "" : "Connection: close\r\n") + "\r\n")
                let response = try c.readResponse()
                let took = Date().timeIntervalSince(started)
                if !keepAlive { c.close() }
                if response.status == 200 {
                    state.withLock { $0.latencies.append(took) }
                } else {
                    state.withLock { $0.failures.append("probe \(n): status \(response.status)") }
                }
            } catch {
                state.withLock { $0.failures.append("probe \(n): \(error)") }
                // A broken kept connection is replaced: the failure is counted once, not for every later probe.
                if keepAlive { connection = try? RawHTTPConnection(port: port, timeout: 5) }
            }
            Thread.sleep(forTimeInterval: pause)
        }
        connection?.close()
        connection = nil
    }

    var succeeded: Int { state.withLock { $0.latencies.count } }

    /// Waits until `count` more probes have succeeded.
    func waitForProgress(_ count: Int, timeout: TimeInterval = 10) throws {
        let target = succeeded + count
        try eventually(timeout: timeout, "the prober made \(count) more probes") { self.succeeded >= target }
    }

    /// Stops probing (closing a kept connection) and reports.
    func stop() -> Report {
        running.withLock { $0 = false }
        _ = finished.wait(timeout: .now() + 10)
        return state.withLock { s in
            Report(count: s.latencies.count + s.failures.count, failures: s.failures, latencies: s.latencies.sorted())
        }
    }
}

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process owned by one test: started with its stdout and stderr going to one temporary log file, killed
/// at tear-down at the latest.
///
/// Output goes straight from the child to the log file (both streams share one file description, so lines keep their
/// order). There is no pipe, so a chatty child can never block on a full pipe and no reader thread is needed; the
/// harness polls the file. The file is deleted when the process is terminated (its text is kept in memory for
/// `log`); set `LB_KEEP_LOGS=1` to keep it.
///
/// Thread-safety: all members may be called from any thread.
final class ManagedProcess: TestResource, @unchecked Sendable {
    /// Which `listening on` line to wait for. The binaries print
    /// `lb-demo-backend listening on 127.0.0.1:P`, `lb-server listening on 127.0.0.1:P (proxy)` (or
    /// `(proxy, tls)` for an HTTPS listener) and `... (admin)`. `.backend` matches any `listening on HOST:PORT` line
    /// without a parenthesised label.
    enum ListenerKind: String, Sendable {
        case backend, proxy, admin
        case proxyTLS = "proxy, tls"

        fileprivate var label: String { self == .backend ? "" : "(\(rawValue))" }
    }

    /// A short name for messages, e.g. `lb-server` or `backend-a`.
    let name: String
    let executablePath: String
    let arguments: [String]
    let logPath: String
    private let process: Process
    private let state = Locked(State())

    private struct State {
        var terminated = false
        var finalLog: String?
    }

    /// The operating-system process id.
    var pid: Int32 { process.processIdentifier }

    var isRunning: Bool { process.isRunning }

    private init(name: String, executablePath: String, arguments: [String], logPath: String, process: Process) {
        self.name = name
        self.executablePath = executablePath
        self.arguments = arguments
        self.logPath = logPath
        self.process = process
    }

    /// Starts `executablePath` with `arguments` and registers it for clean-up.
    ///
    /// - Parameters:
    ///   - name: used in messages and in the log file name; defaults to the executable's file name.
    ///   - environment: added to (and overriding) the test process's environment.
    /// - Throws: `HarnessError.launchFailed` if the executable cannot be started.
    static func start(
        _ executablePath: String,
        _ arguments: [String] = [],
        name: String? = nil,
        environment: [String: String] = [:]
    ) throws -> ManagedProcess {
        let name = name ?? URL(fileURLWithPath: executablePath).lastPathComponent
        let logPath = LogFiles.newPath(for: name)
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
            let logHandle = FileHandle(forWritingAtPath: logPath)
        else {
            throw HarnessError.launchFailed(command: executablePath, underlying: "cannot create log file \(logPath)")
        }
        defer { try? logHandle.close() }  // the child holds its own duplicate

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executablePath)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = logHandle
        process.standardError = logHandle
        let managed = ManagedProcess(
            name: name, executablePath: executablePath, arguments: arguments, logPath: logPath, process: process)
        do {
            try process.run()
        } catch {
            try? FileManager.default.removeItem(atPath: logPath)
            throw HarnessError.launchFailed(
                command: ([executablePath] + arguments).joined(separator: " "), underlying: "\(error)")
        }
        TestResources.shared.register(managed)
        return managed
    }

    // MARK: Output

    /// Everything the process has written to stdout and stderr so far (all of it, once it has been terminated).
    var log: String {
        if let final = state.withLock({ $0.finalLog }) { return final }
        return Self.readLog(at: logPath)
    }

    private static func readLog(at path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    /// Waits until the process prints its `listening on 127.0.0.1:PORT` line of the given kind and returns PORT.
    ///
    /// Only complete (newline-terminated) lines count. Fails fast if the process exits first.
    /// - Throws: `HarnessError.notListening` (with the log) on timeout or early exit.
    func waitForListening(kind: ListenerKind = .backend, timeout: TimeInterval = 10) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let exitedBefore = !isRunning
            let text = log
            if let port = Self.listeningPort(in: text, kind: kind) { return port }
            if exitedBefore {
                let status = waitForExit(timeout: 1).map(String.init) ?? "?"
                throw HarnessError.notListening(
                    process: name, reason: "exited with status \(status) before printing a \(kind) line", log: text)
            }
            if Date() >= deadline {
                throw HarnessError.notListening(
                    process: name, reason: "no \(kind) `listening on` line within \(timeout)s", log: text)
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Parses the port from the first complete `... listening on HOST:PORT[ (label)]` line of `kind` in `log`.
    static func listeningPort(in log: String, kind: ListenerKind) -> Int? {
        var lines = log.split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()  // the text after the last newline is not a complete line yet
        for line in lines {
            guard let marker = line.range(of: "listening on ") else { continue }
            let rest = line[marker.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
            let address = rest.prefix { $0 != " " }
            let label = rest.dropFirst(address.count).trimmingCharacters(in: .whitespaces)
            guard label == kind.label, let colon = address.lastIndex(of: ":"),
                let port = Int(address[address.index(after: colon)...]), (1...65_535).contains(port)
            else { continue }
            return port
        }
        return nil
    }

    // MARK: Signals and exit

    /// Sends `sig` (e.g. `SIGHUP`, `SIGTERM`, `SIGKILL`) if the process is still running; otherwise does nothing.
    func signal(_ sig: Int32) {
        // Checking first keeps us from signalling a recycled pid after Foundation has reaped the child.
        if process.isRunning { _ = Glibc.kill(process.processIdentifier, sig) }
    }

    /// Waits up to `timeout` seconds for the process to exit.
    ///
    /// - Returns: its exit code, or `128 + signal` if a signal ended it (the shell's convention, so a SIGTERM'd
    ///   process reports 143 and a SIGKILL'd one 137); `nil` if it is still running at the deadline.
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return Self.shellStatus(process)
    }

    static func shellStatus(_ process: Process) -> Int32 {
        process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// How long `terminate` waits after SIGTERM before SIGKILL: 3 s, or `LB_TEST_TERMINATE_GRACE` seconds.
    /// `make test-asan` raises it: an instrumented process exits slower (LeakSanitizer scans the heap at exit), and
    /// one killed by SIGKILL is never checked for leaks.
    static let defaultGrace: TimeInterval =
        ProcessInfo.processInfo.environment["LB_TEST_TERMINATE_GRACE"].flatMap(TimeInterval.init) ?? 3

    /// Stops the process: SIGTERM, then SIGKILL if it has not exited after `grace` seconds. Idempotent.
    ///
    /// Keeps the final log text in memory, deletes the log file (unless `LB_KEEP_LOGS` is set) and unregisters.
    /// - Returns: the exit status as `waitForExit` reports it (`nil` only if even SIGKILL did not end it in 5 s).
    @discardableResult
    func terminate(grace: TimeInterval = ManagedProcess.defaultGrace) -> Int32? {
        let first = state.withLock { state -> Bool in
            defer { state.terminated = true }
            return !state.terminated
        }
        guard first else { return process.isRunning ? nil : Self.shellStatus(process) }
        signal(SIGTERM)
        var status = waitForExit(timeout: grace)
        if status == nil {
            signal(SIGKILL)
            status = waitForExit(timeout: 5)
        }
        let text = Self.readLog(at: logPath)
        state.withLock { $0.finalLog = text }
        if ProcessInfo.processInfo.environment["LB_KEEP_LOGS"] == nil {
            try? FileManager.default.removeItem(atPath: logPath)
        }
        TestResources.shared.unregister(self)
        return status
    }

    func cleanUp() { terminate() }

    func cleanUpAtExit() {
        // No waiting at exit: the children must not outlive us, and nobody will read their status.
        if process.isRunning { _ = Glibc.kill(process.processIdentifier, SIGKILL) }
    }
}

/// Where process logs go: one directory per test-binary run, one file per started process.
enum LogFiles {
    private static let directory: String = {
        let dir = NSTemporaryDirectory() + "lb-integration-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()
    private static let counter = Locked(0)

    /// Removes this run's log directory unless logs were kept (`LB_KEEP_LOGS`) or a process was never terminated.
    static func removeDirectoryIfEmpty() {
        _ = rmdir(directory)
    }

    static func newPath(for name: String) -> String {
        let n = counter.withLock { n -> Int in
            n += 1
            return n
        }
        let safe = name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        return "\(directory)/\(n)-\(String(safe)).log"
    }
}

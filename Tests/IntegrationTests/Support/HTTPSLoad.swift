import Foundation

/// `Tests/conformance/https_load.py` running: keep-alive and new-connection HTTPS clients (Python's `http.client`,
/// certificates verified) against one TLS listener of lb in front of a demo backend, until `stop()`. Its progress is
/// read from the status file the script rewrites every 50 ms.
///
/// Thread-safety: one test thread drives it. The process is registered like every `ManagedProcess`, so tear-down
/// ends it if the test does not.
final class HTTPSLoad: @unchecked Sendable {
    /// One reading of the status file (see the script's documentation).
    struct Status {
        var ok = 0
        var keepAliveOK = 0
        var newConnectionOK = 0
        var keepAliveConnections = 0
        var failures: [String] = []
        var failureCount = 0
        /// New-connection client → serial of the certificate its latest handshake got.
        var serials: [String: String] = [:]
        /// New-connection client → the serials it met, one entry per change.
        var serialChanges: [String: [String]] = [:]
        var done = false
    }

    let process: ManagedProcess
    private let statusFile: String

    private init(process: ManagedProcess, statusFile: String) {
        self.process = process
        self.statusFile = statusFile
    }

    /// Starts the clients against 127.0.0.1:`port`, verifying the server as `serverName` against `caCert`; every
    /// answer must be `backend BACKENDNAME path=PATH`.
    /// - Throws: `HarnessError.launchFailed` when python3 is missing (check for it first to skip instead).
    static func start(
        port: Int, caCert: String, serverName: String, backendName: String, keepAliveClients: Int = 3,
        newConnectionClients: Int = 3
    ) throws -> HTTPSLoad {
        guard let python = ManagedProcess.resolveExecutable("python3") else {
            throw HarnessError.launchFailed(command: "python3", underlying: "not found in PATH")
        }
        let script = LBBinaries.packageRoot.appendingPathComponent("Tests/conformance/https_load.py").path
        let statusFile = NSTemporaryDirectory() + "lb-https-load-\(UUID().uuidString).json"
        let process = try ManagedProcess.start(
            python,
            [
                script, String(port), caCert, serverName, backendName, statusFile, String(keepAliveClients),
                String(newConnectionClients),
            ], name: "https-load")
        return HTTPSLoad(process: process, statusFile: statusFile)
    }

    /// The latest status; all zeros before the script's first write.
    /// - Throws: when the file exists and is not the status JSON.
    func status() throws -> Status {
        guard let data = FileManager.default.contents(atPath: statusFile) else { return Status() }
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw HarnessError.malformedResponse(reason: "https_load.py status is not a JSON object", raw: Array(data))
        }
        return Status(
            ok: json["ok"] as? Int ?? 0, keepAliveOK: json["keep_alive_ok"] as? Int ?? 0,
            newConnectionOK: json["new_connection_ok"] as? Int ?? 0,
            keepAliveConnections: json["keep_alive_connections"] as? Int ?? 0,
            failures: json["failures"] as? [String] ?? [], failureCount: json["failure_count"] as? Int ?? 0,
            serials: json["serials"] as? [String: String] ?? [:],
            serialChanges: json["serial_changes"] as? [String: [String]] ?? [:], done: json["done"] as? Bool ?? false)
    }

    /// Polls the status until `condition` holds. - Throws: `HarnessError.conditionNotMet`, with the last status.
    func waitUntil(
        _ description: String, timeout: TimeInterval = 20, _ condition: (Status) -> Bool
    ) throws {
        var last = Status()
        do {
            try eventually(timeout: timeout, interval: 0.05, description) {
                last = try status()
                return condition(last)
            }
        } catch HarnessError.conditionNotMet {
            throw HarnessError.conditionNotMet(
                description: "\(description); last status: \(last)\n--- https_load.py log ---\n\(process.log)",
                timeout: timeout)
        }
    }

    /// Waits until `count` more requests have succeeded than when called: load is really flowing.
    func waitForProgress(_ count: Int, timeout: TimeInterval = 20) throws {
        let target = try status().ok + count
        try waitUntil("https_load.py completes \(count) more requests", timeout: timeout) { $0.ok >= target }
    }

    /// Tells every client to stop after its current request, waits for the script to exit and returns its final
    /// status. The status file is removed.
    /// - Throws: `HarnessError.conditionNotMet` if the script does not exit with its final status in `timeout`.
    func stop(timeout: TimeInterval = 30) throws -> Status {
        _ = FileManager.default.createFile(atPath: statusFile + ".stop", contents: nil)
        defer {
            for suffix in ["", ".stop", ".tmp"] { try? FileManager.default.removeItem(atPath: statusFile + suffix) }
        }
        let exit = process.waitForExit(timeout: timeout)
        let final = try status()
        guard exit == 0, final.done else {
            process.terminate()
            throw HarnessError.conditionNotMet(
                description: "https_load.py to stop and exit 0 (exit \(exit.map(String.init) ?? "none")); log:\n"
                    + process.log, timeout: timeout)
        }
        return final
    }
}

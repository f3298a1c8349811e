import Foundation

/// `lb-server --upgrade --control-socket PATH [the flags the server should run with]`: the operator's one
/// command for a hot binary upgrade. It asks the lb-server answering on PATH to start this binary with these
/// flags as its successor, waits for the outcome and says which it was:
///
/// - 0: the successor serves (it passed its first health checks and accepts on every socket), and the previous
///   process has stopped accepting and drains;
/// - 1: the upgrade failed (bad config in the successor, a port problem, no server passed its first health
///   check in time, the successor crashed); the previous process serves on as before;
/// - 2: this command's own flags or config are invalid: nothing was asked of the running process;
/// - 3: no lb-server answers on PATH.
public enum UpgradeCommand {
    /// The default for `--upgrade-timeout`: how long the successor's first health checks may take.
    public static let defaultTimeoutMs: UInt64 = 30_000

    /// Parses `--upgrade-timeout` (`"30s"`, `"500ms"`, or seconds). Nil gives the default.
    static func timeoutMs(_ text: String?) throws(ControlError) -> UInt64 {
        guard let text else { return defaultTimeoutMs }
        let value: String = text.allSatisfy({ $0.isNumber || $0 == "." }) ? text + "s" : text
        do {
            return try ConfigDuration.milliseconds(parsing: value)
        } catch {
            throw ControlError("--upgrade-timeout \(quoted(text)): \(error.message)")
        }
    }

    /// Runs the upgrade; prints the outcome (stdout) or the failure (stderr); returns the exit status above.
    /// `successorArguments` are this command's arguments with `--upgrade` replaced by `--takeover`.
    public static func run(controlSocket: String, successorArguments: [String], timeout: String?) -> Int32 {
        let timeoutMs: UInt64
        do {
            timeoutMs = try Self.timeoutMs(timeout)
        } catch {
            printError("lb-server: \(error)")
            return 2
        }
        let client: ControlClient
        do {
            client = try ControlClient(path: controlSocket)
        } catch {
            printError("lb-server: \(error)")
            return 3
        }
        defer { client.close() }
        let request: [String: Any] = [
            "request": "upgrade", "binary": executablePath(), "arguments": successorArguments,
            "directory": FileManager.default.currentDirectoryPath, "timeout_ms": timeoutMs,
        ]
        do {
            let answer = try client.request(request, timeout: Double(timeoutMs) / 1000 + 15).reply
            let old = answer["old_pid"] as? Int ?? 0
            let new = answer["new_pid"] as? Int ?? 0
            print("lb-server: upgraded: pid \(new) serves; pid \(old) stopped accepting and drains")
            return 0
        } catch {
            printError("lb-server: upgrade failed: \(error)")
            return 1
        }
    }

    /// This binary's path, as the kernel knows it: the file the operator ran, i.e. the new version.
    private static func executablePath() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments[0]
    }

    private static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

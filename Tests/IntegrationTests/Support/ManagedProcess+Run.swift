import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension ManagedProcess {
    /// Runs a command to completion (e.g. `curl`, `python3`) and returns what it printed.
    ///
    /// - Parameters:
    ///   - executable: a path, or a bare name looked up in `PATH`.
    ///   - input: written to the command's stdin, which is then closed; without it stdin is `/dev/null`.
    ///   - timeout: after this many seconds the command is SIGKILLed (status 137, and stderr says so).
    /// - Returns: `status` is the exit code or `128 + signal` (127 if it could not be started, with the reason in
    ///   `stderr`). stdout and stderr are read on background threads so neither pipe can fill up and block the child.
    ///   Never throws and never waits more than `timeout` + a few seconds, even if a grandchild keeps a pipe open.
    static func run(
        _ executable: String,
        _ arguments: [String],
        input: Data? = nil,
        timeout: TimeInterval,
        environment: [String: String] = [:]
    ) -> (status: Int32, stdout: Data, stderr: String) {
        guard let path = resolveExecutable(executable) else {
            return (127, Data(), "[harness] \(executable): not found in PATH")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        let stdinPipe = input.map { _ in Pipe() }
        process.standardInput = stdinPipe ?? FileHandle.nullDevice

        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            return (127, Data(), "[harness] could not launch \(path): \(error)")
        }

        let output = Locked((stdout: Data(), stderr: Data()))
        let readers = DispatchGroup()
        let out = stdoutPipe.fileHandleForReading
        let err = stderrPipe.fileHandleForReading
        DispatchQueue.global().async(group: readers) {
            let data = out.readDataToEndOfFile()
            output.withLock { $0.stdout = data }
        }
        DispatchQueue.global().async(group: readers) {
            let data = err.readDataToEndOfFile()
            output.withLock { $0.stderr = data }
        }
        if let stdinPipe, let input {
            let writer = stdinPipe.fileHandleForWriting
            DispatchQueue.global().async {
                // Fails with EPIPE (SIGPIPE is ignored) if the command exits without reading: that is fine.
                try? writer.write(contentsOf: input)
                try? writer.close()
            }
        }

        var note = ""
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            _ = Glibc.kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + 5)
            note = "\n[harness] \(executable) killed after \(timeout)s timeout"
        }
        // A grandchild that inherited a pipe could keep it open forever; do not wait for it.
        _ = readers.wait(timeout: .now() + 2)
        let captured = output.current
        let status = process.isRunning ? 137 : shellStatus(process)
        return (status, captured.stdout, String(decoding: captured.stderr, as: UTF8.self) + note)
    }

    /// `name` itself if it contains a slash, else the first executable `PATH` entry of that name.
    static func resolveExecutable(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

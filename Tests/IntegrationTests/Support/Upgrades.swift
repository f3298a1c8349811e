import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Hot upgrades from a test: runs `lb-server --upgrade` against a running instance's control socket, and keeps
/// track of the successors it creates (children of the instance they replaced, not of the test) so tear-down
/// can stop them.
final class UpgradeDriver: TestResource, @unchecked Sendable {
    struct Outcome {
        let status: Int32
        let output: String
        /// The serving process after the command: the new pid on success.
        let newPID: Int32?
    }

    let controlSocket: String
    /// The running instance's arguments; each upgrade passes the same ones (or `arguments` given to `upgrade`).
    let arguments: [String]
    private let successors = Locked<[Int32]>([])

    init(controlSocket: String, arguments: [String]) {
        self.controlSocket = controlSocket
        self.arguments = arguments
        TestResources.shared.register(self)
    }

    /// A fresh control socket path under the temporary directory, short enough for sun_path.
    static func socketPath() -> String {
        "/tmp/lb-ctl-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
    }

    /// Runs `lb-server --upgrade ARGUMENTS... [EXTRA...]` and waits for it to exit.
    func upgrade(arguments given: [String]? = nil, extra: [String] = [], timeout: TimeInterval = 60) throws -> Outcome {
        let process = try ManagedProcess.start(
            try LBBinaries.path(of: .server), ["--upgrade"] + (given ?? arguments) + extra, name: "lb-upgrade")
        guard let status = process.waitForExit(timeout: timeout) else {
            process.terminate()
            throw HarnessError.conditionNotMet(description: "lb-server --upgrade exited", timeout: timeout)
        }
        let output = process.log
        process.terminate()
        var pid: Int32?
        if status == 0, let range = output.range(of: "upgraded: pid ") {
            pid = Int32(output[range.upperBound...].prefix { $0.isNumber })
        }
        if let pid { successors.withLock { $0.append(pid) } }
        return Outcome(status: status, output: output, newPID: pid)
    }

    /// True while `pid` runs (a zombie, never reaped by its gone parent, counts as exited).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// The inodes of the sockets listening on TCP `port` (from /proc/net/tcp and tcp6).
    static func listeningInodes(port: Int) -> Set<String> {
        var inodes = Set<String>()
        let hexPort = String(format: ":%04X", port)
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // Read to the end of file: String(contentsOfFile:) reads a file whose size is 0, as procfs reports, in
            // 4 KiB chunks and stops at the first short read, and procfs hands out whole lines, so it returned only
            // the first ~27 sockets; with many sockets open on the host the new process's listeners were missed.
            guard let handle = FileHandle(forReadingAtPath: file) else { continue }
            defer { try? handle.close() }
            guard let data = try? handle.readToEnd() else { continue }
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ")
                // sl local_address rem_address st ... inode (field 9)
                guard f.count > 9, f[1].hasSuffix(hexPort), f[3] == "0A" else { continue }
                inodes.insert(String(f[9]))
            }
        }
        return inodes
    }

    /// How many of `pid`'s descriptors are sockets listening on TCP `port`.
    static func listeningSockets(of pid: Int32, port: Int) -> Int {
        let inodes = listeningInodes(port: port)
        let dir = "/proc/\(pid)/fd"
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return 0 }
        return fds.filter { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(fd)"),
                target.hasPrefix("socket:[")
            else { return false }
            return inodes.contains(String(target.dropFirst(8).dropLast()))
        }.count
    }

    /// SIGTERM to every successor still running, SIGKILL to those left after 5 s.
    func cleanUp() {
        let pids = successors.withLock { list -> [Int32] in
            defer { list = [] }
            return list
        }
        for pid in pids where Self.isRunning(pid) { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(5)
        while pids.contains(where: Self.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        for pid in pids where Self.isRunning(pid) { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: controlSocket)
        TestResources.shared.unregister(self)
    }

    func cleanUpAtExit() {
        for pid in successors.withLock({ $0 }) where Self.isRunning(pid) { kill(pid, SIGKILL) }
    }
}

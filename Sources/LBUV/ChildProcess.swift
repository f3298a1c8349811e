import CLibUV
import Glibc

/// A process this one started (`uv_spawn`), watched from one loop: `onExit` runs on the loop when it ends.
/// Same ownership rule as every handle: one retain in `data` until the close callback. Closing the handle
/// does not stop the process; it only stops watching it (a hot upgrade leaves its successor running).
public final class ChildProcess {
    public let handle: UnsafeMutablePointer<uv_process_t>
    public let pid: Int32
    private var isClosing = false
    private var exited = false
    /// Exit status and the signal that ended it (0 when none). Called at most once.
    public var onExit: (_ status: Int64, _ signal: Int32) -> Void = { _, _ in }

    /// Starts `executable` with `arguments` (not including argv[0], which is `executable`) in `directory`,
    /// with this process's environment and its standard input, output and error, and no other descriptor of
    /// this process: every other one is marked close-on-exec first. A descriptor this process inherited without
    /// that flag would otherwise live on in the child, and whoever watches it for this process's exit (a
    /// supervisor's pipe or socket) would wait for the child too. `newSession` puts it in a
    /// session of its own (setsid), so a terminal's signals meant for this process do not reach it.
    /// Throws naming the executable and the reason (not found, not executable...).
    public init(
        loop: EventLoop, executable: String, arguments: [String], directory: String?, newSession: Bool
    ) throws(SetupError) {
        let raw = UnsafeMutablePointer<uv_process_t>.allocate(capacity: 1)
        handle = raw
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let cwd = directory.map { strdup($0) } ?? nil
        let file = strdup(executable)
        defer {
            for a in argv { free(a) }
            free(cwd)
            free(file)
        }
        var stdio = (0..<3).map { fd in
            var c = uv_stdio_container_t()
            c.flags = UV_INHERIT_FD
            c.data.fd = Int32(fd)
            return c
        }
        Self.closeOnExecAboveStdio()
        var status: Int32 = 0
        argv.withUnsafeBufferPointer { args in
            stdio.withUnsafeMutableBufferPointer { containers in
                var options = uv_process_options_t()
                options.exit_cb = Callbacks.processExit
                options.file = UnsafePointer(file)
                options.args = UnsafeMutablePointer(mutating: args.baseAddress)
                options.cwd = UnsafePointer(cwd)
                options.flags = newSession ? UV_PROCESS_DETACHED.rawValue : 0
                options.stdio_count = 3
                options.stdio = containers.baseAddress
                status = uv_spawn(loop.raw, raw, &options)
            }
        }
        if status < 0 {
            // A failed uv_spawn leaves an initialised handle that must still be closed.
            pid = 0
            handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
            close()
            throw SetupError("cannot start \(executable): \(UVError(status))")
        }
        pid = handle.pointee.pid
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    private static func closeOnExecAboveStdio() {
        guard let dir = opendir("/proc/self/fd") else { return }
        defer { closedir(dir) }
        let own = dirfd(dir)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name), fd > 2, fd != own else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    func didExit(status: Int64, signal: Int32) {
        guard !exited else { return }
        exited = true
        let action = onExit
        onExit = { _, _ in }
        action(status, signal)
    }

    /// Sends `signal` unless the process has already exited. Loop thread.
    public func kill(_ signal: Int32) {
        guard !exited, !isClosing else { return }
        _ = uv_process_kill(handle, signal)
    }

    /// Stops watching: `onExit` will not be called any more. Idempotent.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        onExit = { _, _ in }
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeProcess)
    }
}

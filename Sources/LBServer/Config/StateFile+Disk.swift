import Foundation

#if canImport(Glibc)
    import Glibc

    private let posixWrite = Glibc.write
    private let posixClose = Glibc.close
#elseif canImport(Darwin)
    import Darwin

    private let posixWrite = Darwin.write
    private let posixClose = Darwin.close
#endif

/// Reading and writing the state file with POSIX calls, so every failure carries the OS reason. Blocking: the
/// caller is the control loop (an admin change, a reload, start-up), never a worker's data path.
extension StateFile {
    /// What reading the file found.
    enum ReadResult: Equatable {
        /// No file at the path: nothing changed at runtime yet.
        case absent
        case read(RuntimeChanges)
        /// Unreadable or invalid: the message names the problem (the path is the caller's to add).
        case rejected(String)
    }

    static func read(path: String) -> ReadResult {
        var st = stat()
        if stat(path, &st) != 0 && errno == ENOENT { return .absent }
        if (st.st_mode & S_IFMT) == S_IFDIR { return .rejected("is a directory, not a state file") }
        let bytes: [UInt8]
        do {
            bytes = try ConfigLoader.readFile(path)
        } catch {
            return .rejected(error.message)
        }
        do {
            return .read(try decode(bytes, source: path))
        } catch {
            return .rejected(error.problems.map(\.description).joined(separator: "; "))
        }
    }

    /// Replaces the file at `path` with `bytes` so that a crash at any point leaves either the old file or the
    /// new one, whole: the bytes go to a temporary file in the same directory (so the rename stays within one
    /// file system), which is flushed with fsync, renamed over `path`, and then the directory is flushed so
    /// the rename itself survives a power loss. On failure the temporary file is removed and `path` is as it
    /// was. Throws a message naming the step and the OS reason. Once the rename is done the new file is in
    /// place, so a failure to flush the directory after it is returned as a warning, not thrown.
    @discardableResult
    static func write(_ bytes: [UInt8], to path: String) throws(StateFileWriteError) -> String? {
        // The process id keeps a hot upgrade's two processes from writing into each other's temporary file.
        let temporary = "\(path).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .init("cannot create \(temporary): \(reason())") }
        var failure: String?
        var offset = 0
        while offset < bytes.count && failure == nil {
            let n = bytes[offset...].withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                offset += n
            } else if n < 0 && errno != EINTR {
                failure = "cannot write \(temporary): \(reason())"
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = "cannot flush \(temporary) to disk: \(reason())" }
        if posixClose(fd) != 0 && failure == nil { failure = "cannot close \(temporary): \(reason())" }
        if failure == nil && rename(temporary, path) != 0 {
            failure = "cannot rename \(temporary) to \(path): \(reason())"
        }
        if let failure {
            unlink(temporary)
            throw .init(failure)
        }
        do {
            try syncDirectory(of: path)
        } catch {
            return error.message
        }
        return nil
    }

    /// Moves the file at `path` to `path + ".rejected"` (replacing an older one), so that a file this process
    /// refused is kept for a person to read before the first write replaces it. Returns the new name.
    static func setAside(_ path: String) throws(StateFileWriteError) -> String {
        let kept = path + ".rejected"
        guard rename(path, kept) == 0 else {
            if errno == ENOENT { return kept }
            throw .init("cannot keep the rejected file as \(kept): \(reason())")
        }
        try syncDirectory(of: path)
        return kept
    }

    /// The directory the file lives in.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Nil when the file's directory exists; otherwise why not, for the start-up error.
    static func directoryProblem(_ path: String) -> String? {
        let dir = directory(of: path)
        var st = stat()
        guard stat(dir, &st) == 0 else { return "its directory \(dir) cannot be used: \(reason())" }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return "\(dir) is not a directory" }
        return nil
    }

    private static func syncDirectory(of path: String) throws(StateFileWriteError) {
        let dir = directory(of: path)
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .init("cannot open directory \(dir) to flush it: \(reason())") }
        defer { _ = posixClose(fd) }
        guard fsync(fd) == 0 else { throw .init("cannot flush directory \(dir) to disk: \(reason())") }
    }

    private static func reason() -> String { String(cString: strerror(errno)) }
}

/// A state file write that failed; `message` names the step, the file and the OS reason.
struct StateFileWriteError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

import Foundation
import LBCore
import LBUV
import Logging

/// A running lb-server's state file (`server_source.state_file`): reads it at start and on `SIGHUP`, writes it
/// after every admin change, and remembers what the last read found for `/api/servers`. Control loop only
/// (start-up included, before the loop runs); every call blocks on the file system, which is why workers
/// never make one.
final class StateFileStore {
    let path: String
    private let logger: Logger

    /// What the last read (start or `SIGHUP`) found.
    enum Outcome: Equatable {
        /// No file yet.
        case absent
        /// Read and applied: the config's servers with these changes laid over them.
        case applied
        /// Unreadable, invalid, or not applicable to the config's servers; the config was used alone.
        case rejected(String)
    }

    private(set) var outcome = Outcome.absent
    /// Reads rejected since start.
    private(set) var rejections = 0
    /// True while the file at `path` is one this process rejected, which the next write keeps aside first.
    private var holdsRejectedFile = false
    /// Where the last rejected file was kept.
    private(set) var keptAs: String?
    /// The changes the file holds, as last read or written; nil when unknown (absent or rejected).
    private var onDisk: RuntimeChanges?
    /// The last write's failure; nil once a write succeeds.
    private(set) var writeError: String?

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// Throws when the file's directory does not exist: better to refuse to start than to accept admin changes
    /// that cannot be kept.
    func checkDirectory() throws(SetupError) {
        if let problem = StateFile.directoryProblem(path) {
            throw SetupError("server_source.state_file \(path): \(problem)")
        }
    }

    /// Reads the file. Returns its changes, to be applied whole (call `reject` if they cannot be); nil when
    /// there is no file or it was rejected (logged at error, with the file and the problem).
    func read() -> RuntimeChanges? {
        switch StateFile.read(path: path) {
        case .absent:
            outcome = .absent
            holdsRejectedFile = false
            onDisk = nil
            logger.info("no state file yet; the config's servers apply", metadata: ["file": "\(path)"])
            return nil
        case .rejected(let problem):
            reject(problem)
            return nil
        case .read(let changes):
            outcome = .applied
            holdsRejectedFile = false
            onDisk = changes
            return changes
        }
    }

    /// The file read cannot be used (`problem` says why): the config's servers apply alone, and the file stays
    /// untouched until the next write keeps it aside as `<file>.rejected`.
    func reject(_ problem: String) {
        outcome = .rejected(problem)
        rejections += 1
        holdsRejectedFile = true
        onDisk = nil
        logger.error("state file rejected; the config's servers apply without its changes", metadata: [
            "file": "\(path)", "error": "\(problem)",
        ])
    }

    /// Writes `changes` unless the file already holds exactly them. Throws when the file could not be replaced
    /// (the old one stays); the caller decides whether that stops its change.
    func write(_ changes: RuntimeChanges) throws(StateFileWriteError) {
        guard changes != onDisk || holdsRejectedFile else { return }
        do throws(StateFileWriteError) {
            if holdsRejectedFile {
                keptAs = try StateFile.setAside(path)
                holdsRejectedFile = false
                logger.warning("kept the rejected state file", metadata: [
                    "file": "\(path)", "kept_as": "\(keptAs ?? "")",
                ])
            }
            if let warning = try StateFile.write(StateFile.encode(changes), to: path) {
                logger.warning("state file written but its directory was not flushed", metadata: [
                    "file": "\(path)", "error": "\(warning)",
                ])
            }
        } catch {
            writeError = error.message
            logger.error("state file not written", metadata: ["file": "\(path)", "error": "\(error.message)"])
            throw error
        }
        onDisk = changes
        writeError = nil
    }

    /// `write`, with a failure only logged: for rewrites after a read, where nothing is lost if it fails.
    func writeLogged(_ changes: RuntimeChanges) {
        try? write(changes)
    }

    /// The `state_file` object of `/api/servers`. `status`, `loaded` and `error` describe the last read (start
    /// or `SIGHUP`); `write_error` the last write, until one succeeds.
    func json() -> [String: Any] {
        var object: [String: Any] = ["path": path, "rejections": rejections]
        switch outcome {
        case .absent:
            object["status"] = "absent"
            object["loaded"] = false
        case .applied:
            object["status"] = "applied"
            object["loaded"] = true
        case .rejected(let problem):
            object["status"] = "rejected"
            object["loaded"] = false
            object["error"] = problem
        }
        if let keptAs { object["rejected_file_kept_as"] = keptAs }
        if let writeError { object["write_error"] = writeError }
        return object
    }
}

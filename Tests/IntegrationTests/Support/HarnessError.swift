import Foundation

/// Every failure the harness itself reports. Messages are written for the person reading a red test: they say what
/// was expected, what happened, and (where it helps) include the captured log of the process involved.
enum HarnessError: Error, CustomStringConvertible {
    /// A binary the tests need is not where SwiftPM puts it.
    case missingBinary(path: String)
    /// A process could not be started at all (bad path, not executable, ...).
    case launchFailed(command: String, underlying: String)
    /// A process did not print its `listening on` line in time, or exited first.
    case notListening(process: String, reason: String, log: String)
    /// A socket call failed; `call` names it, `errno` is the value it left.
    case socket(call: String, errno: Int32)
    /// Nothing (or not enough) arrived before the deadline; `partial` is what did arrive.
    case timedOut(what: String, partial: [UInt8])
    /// The peer closed the connection before a complete message arrived.
    case closedBeforeComplete(partial: [UInt8])
    /// Bytes that are not a valid HTTP/1.1 response by the harness's (strict) reading.
    case malformedResponse(reason: String, raw: [UInt8])
    /// `eventually` gave up.
    case conditionNotMet(description: String, timeout: TimeInterval)
    /// /proc could not be read for this pid (the process is gone, or the field is missing).
    case procUnreadable(pid: Int32, field: String)

    var description: String {
        switch self {
        case .missingBinary(let path):
            return
                "binary not found at \(path): run `swift build` first (or set LB_BIN_DIR to the directory holding it)"
        case .launchFailed(let command, let underlying):
            return "could not launch \(command): \(underlying)"
        case .notListening(let process, let reason, let log):
            return "\(process) never reported listening: \(reason)\n--- log of \(process) ---\n\(log)--- end of log ---"
        case .socket(let call, let errno):
            return "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .timedOut(let what, let partial):
            return "timed out waiting for \(what); received \(partial.count) bytes so far: \(partial.debugText)"
        case .closedBeforeComplete(let partial):
            return "peer closed the connection before a complete response; received: \(partial.debugText)"
        case .malformedResponse(let reason, let raw):
            return "malformed HTTP response (\(reason)): \(raw.debugText)"
        case .conditionNotMet(let description, let timeout):
            return "condition not met within \(timeout)s: \(description)"
        case .procUnreadable(let pid, let field):
            return "could not read \(field) of pid \(pid) from /proc (has it exited?)"
        }
    }
}

extension Array where Element == UInt8 {
    /// The bytes as text with CR and LF made visible, cut to a readable length, for failure messages.
    var debugText: String {
        let limit = 2_048
        let shown = String(decoding: prefix(limit), as: UTF8.self)
            .replacingOccurrences(of: "\r", with: "\\r")
            .replacingOccurrences(of: "\n", with: "\\n")
        return count > limit ? "\"\(shown)\" ... (\(count - limit) more bytes)" : "\"\(shown)\""
    }
}

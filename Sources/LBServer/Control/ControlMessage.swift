import Foundation

/// The control socket's framing: one JSON object per line in each direction, UTF-8, `\n`-terminated. A request
/// names itself in `"request"`; every answer has `"ok"` (true, or false with `"error"`). Descriptors (SCM_RIGHTS)
/// travel only with the answer to `takeover`, attached to its first byte. Sans-I/O: the socket code lives in
/// `ControlServer` (libuv side) and `ControlClient` (blocking side).
enum ControlMessage {
    /// A line longer than this is a protocol error (a server list of thousands fits with room to spare).
    static let maxLineBytes = 4 << 20

    /// `object` as one line. Objects that JSONSerialization cannot encode become an error answer.
    static func encode(_ object: [String: Any]) -> [UInt8] {
        guard JSONSerialization.isValidJSONObject(object),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        else { return Array(#"{"error":"internal: answer not encodable","ok":false}"#.utf8) + [10] }
        return Array(data) + [10]
    }

    /// One line (without its `\n`) as an object. Throws `ControlError` naming what is wrong.
    static func decode(_ line: [UInt8]) throws(ControlError) -> [String: Any] {
        guard let value = try? JSONSerialization.jsonObject(with: Data(line)) else {
            throw ControlError("not a JSON line: \(String(decoding: line.prefix(80), as: UTF8.self))")
        }
        guard let object = value as? [String: Any] else { throw ControlError("a message must be a JSON object") }
        return object
    }

    static func failure(_ message: String) -> [String: Any] { ["ok": false, "error": message] }
}

/// Splits a byte stream into lines, with the `ControlMessage.maxLineBytes` limit.
struct ControlLineBuffer {
    private var bytes: [UInt8] = []

    mutating func append(_ chunk: UnsafeRawBufferPointer) { bytes.append(contentsOf: chunk) }
    mutating func append(_ chunk: ArraySlice<UInt8>) { bytes.append(contentsOf: chunk) }

    /// The next complete line without its `\n` (a trailing `\r` is dropped too), or nil until one is complete.
    /// Throws when a line exceeds the limit; the buffer is then unusable (close the connection).
    mutating func nextLine() throws(ControlError) -> [UInt8]? {
        guard let end = bytes.firstIndex(of: 10) else {
            if bytes.count > ControlMessage.maxLineBytes {
                throw ControlError("line longer than \(ControlMessage.maxLineBytes) bytes")
            }
            return nil
        }
        var line = Array(bytes[..<end])
        bytes.removeSubrange(...end)
        if line.last == 13 { line.removeLast() }
        return line
    }
}

/// A control-socket failure with a message for a person: cannot connect, timed out, the peer said no.
public struct ControlError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The requests the control socket serves.
enum ControlRequest: Equatable {
    /// Who is running: pid, version, workers, what it is doing.
    case status
    /// From `lb-server --upgrade`: start `binary` with `arguments` in `directory` as the successor, and answer
    /// when it has taken over (or failed) within `timeoutMs`.
    case upgrade(binary: String, arguments: [String], directory: String?, timeoutMs: UInt64)
    /// From the successor (the process `upgrade` started, checked by its pid): the hand-off state, with every
    /// listening socket attached.
    case takeover
    /// From the successor: it accepts on every socket now; stop accepting and drain. The answer comes once
    /// every worker has stopped accepting. `countersFormat`: the `CarriedCounters` format the successor reads
    /// (absent from older successors); when this process writes it, the answer carries its counters and the
    /// final ones follow after the drain (`finalCounters`).
    case ready(countersFormat: Int?)
    /// From the successor: it gives up (the message says why) and exits; the running process keeps serving.
    case abort(error: String)
    /// From the process this one replaced, once it has drained and every worker has ended: its final counters
    /// (`CarriedCounters` JSON), which replace the ones the answer to `ready` carried.
    case finalCounters(ControlPayload)

    static let names = ["status", "upgrade", "takeover", "ready", "abort", "final_counters"]

    init(_ object: [String: Any]) throws(ControlError) {
        guard let name = object["request"] as? String else {
            throw ControlError(#"no "request" field; known requests: \#(Self.names.joined(separator: ", "))"#)
        }
        switch name {
        case "status": self = .status
        case "takeover": self = .takeover
        case "ready": self = .ready(countersFormat: (object["counters"] as? NSNumber)?.intValue)
        case "final_counters":
            guard let counters = object["counters"] as? [String: Any] else {
                throw ControlError(#"final_counters needs "counters", an object"#)
            }
            self = .finalCounters(ControlPayload(counters))
        case "abort": self = .abort(error: object["error"] as? String ?? "no reason given")
        case "upgrade":
            guard let binary = object["binary"] as? String, binary.hasPrefix("/") else {
                throw ControlError(#"upgrade needs "binary", an absolute path"#)
            }
            guard let arguments = object["arguments"] as? [String] else {
                throw ControlError(#"upgrade needs "arguments", a list of strings"#)
            }
            let timeout = (object["timeout_ms"] as? NSNumber)?.uint64Value ?? 30_000
            guard (1...3_600_000).contains(timeout) else {
                throw ControlError("timeout_ms must be between 1 and 3600000")
            }
            self = .upgrade(
                binary: binary, arguments: arguments, directory: object["directory"] as? String, timeoutMs: timeout)
        default:
            throw ControlError("unknown request \(quoted(name)); known: \(Self.names.joined(separator: ", "))")
        }
    }
}

/// A JSON object carried by a request, compared by value (so `ControlRequest` stays `Equatable`).
struct ControlPayload: Equatable, @unchecked Sendable {
    let object: [String: Any]

    init(_ object: [String: Any]) { self.object = object }

    /// Equal when they encode to the same line (keys are sorted, so the order they were built in does not count).
    static func == (a: Self, b: Self) -> Bool { ControlMessage.encode(a.object) == ControlMessage.encode(b.object) }
}

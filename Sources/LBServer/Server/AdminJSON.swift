import Foundation
import LBCore

/// JSON out (Foundation: not the hot path) and the strict reading of management request bodies.
///
/// Bodies are read with the config layer's `JSONParser` and `ConfigSection`, not `JSONSerialization`: it keeps
/// duplicate keys, tells `true` from `1` and `1` from `1.0`, and `ConfigLoader.readServer` applies exactly the
/// rules a config file's `servers` entries get, so an admin-added server always survives a later reload.
enum AdminJSON {
    /// Sorted keys, one line, trailing newline. Never fails for the plain dictionaries the admin API builds.
    static func text(_ object: Any) -> String {
        let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: options) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Keys accepted by `POST /manage/servers`: a config file's server keys but `health_check` and `tls`.
    static let addKeys = ConfigLoader.ServerKey.allCases.filter {
        $0 != .healthCheck && $0 != .tls && $0 != .maxConnections && $0 != .maxQueue
    }
    /// Keys accepted by `PATCH /manage/servers/{id}`.
    enum PatchKey: String, ConfigKey { case weight, state }

    /// A JSON object from a request body, with only `keys`; throws 400 for an empty body, a syntax error or a
    /// non-object.
    static func object<Key: ConfigKey>(
        _ body: [UInt8], keys: [Key], problems: ProblemList
    ) throws(AdminError) -> ConfigSection<Key> {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            throw AdminError(400, field: "body", "empty; expected a JSON object")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw AdminError(
                400, field: "body", "malformed JSON at line \(error.line), column \(error.column): \(error.message)")
        }
        guard let section = ConfigSection(value, path: "", problems: problems, accepting: keys) else {
            throw AdminError(400, field: "body", "expected a JSON object, got \(value.kindDescription)")
        }
        return section
    }

    /// The first recorded problem as a 400 naming its key (unknown keys and type errors included).
    static func firstProblem(_ problems: ProblemList) -> AdminError? {
        guard let p = problems.problems.first else { return nil }
        return AdminError(400, field: p.location.isEmpty ? nil : p.location, p.message)
    }

    /// `POST /manage/servers`: `{"host", "port", "weight"?, "id"?}` validated like a config file's server.
    /// The id defaults to `host:port`. Host resolution happens later, when the routing state is built.
    static func addServer(_ body: [UInt8]) throws(AdminError) -> ServerSpec {
        let problems = ProblemList()
        let section = try object(body, keys: addKeys, problems: problems)
        let spec = ConfigLoader.readServer(section)
        if let error = firstProblem(problems) { throw error }
        guard let spec else { throw AdminError(400, field: "body", "not a valid server") }
        return spec
    }

    /// `PATCH /manage/servers/{id}`: a new weight and/or an admin state.
    static func patchServer(_ body: [UInt8]) throws(AdminError) -> ServerPatch {
        let problems = ProblemList()
        let section = try object(body, keys: Array(PatchKey.allCases), problems: problems)
        var patch = ServerPatch()
        if let value = section[.weight] {
            patch.weight = section.checkedInt(.weight, value, in: ConfigLoader.weightRange)
        }
        if let value = section[.state] {
            if case .string(let text) = value {
                patch.state = ServerPatch.AdminState(rawValue: text)
                if patch.state == nil {
                    section.problem(.state, "\(quoted(text)) is not one of up, draining")
                }
            } else {
                section.problem(.state, "expected \"up\" or \"draining\", got \(value.kindDescription)")
            }
        }
        if let error = firstProblem(problems) { throw error }
        guard patch.weight != nil || patch.state != nil else {
            throw AdminError(400, field: "body", "expected \"weight\" and/or \"state\"")
        }
        return patch
    }
}

/// What `PATCH /manage/servers/{id}` asks for; nil fields stay as they are.
struct ServerPatch: Equatable {
    /// `up` ends an admin drain; it does not override a failing health check.
    enum AdminState: String {
        case up
        case draining
    }

    var weight: Int?
    var state: AdminState?
}

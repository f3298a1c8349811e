import Foundation
import LBCore

/// The state file's format: `RuntimeChanges` as a versioned JSON object. Pure; any thread.
///
/// ```json
/// {
///   "version": 1,
///   "written_at": "2026-12-06T05:10:00Z",
///   "added": [{"id": "b4", "host": "10.0.0.4", "port": 80, "weight": 1}],
///   "removed": ["b2"],
///   "weights": {"b1": 4},
///   "draining": ["b3"]
/// }
/// ```
///
/// Reading is strict, like the config file's: unknown or repeated keys, wrong types, a server that a config
/// file's `servers` entry could not be, an id listed twice, and contradictions (an id both removed and added,
/// or removed and reweighted) are all problems, and any problem rejects the whole file, so a damaged file is
/// never applied in part. `written_at` is for people and is not read back.
enum StateFile {
    /// The one version this build reads and writes.
    static let version = 1

    enum Key: String, ConfigKey {
        case version, writtenAt = "written_at", added, removed, weights, draining
    }

    /// The file's text: sorted keys, indented, trailing newline, so it diffs well and reads easily.
    static func encode(_ changes: RuntimeChanges, writtenAt: Date = Date()) -> [UInt8] {
        let stamp = ISO8601DateFormatter().string(from: writtenAt)
        let object: [String: Any] = [
            "version": version, "written_at": stamp,
            "added": changes.added.map { ["id": $0.id, "host": $0.host, "port": $0.port, "weight": $0.weight] },
            "removed": changes.removed, "weights": changes.weights, "draining": changes.draining,
        ]
        let options: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Never fails: only strings, integers, arrays and dictionaries with string keys.
        let data = (try? JSONSerialization.data(withJSONObject: object, options: options)) ?? Data("{}".utf8)
        return [UInt8](data) + [0x0A]
    }

    /// Reads a state file's bytes. Throws every problem found, each located by key path (`added[0].port`),
    /// with `source` (the path) naming the file.
    static func decode(_ bytes: [UInt8], source: String) throws(ConfigErrors) -> RuntimeChanges {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            let problem = ConfigProblem("line \(error.line), column \(error.column)", "invalid JSON: \(error.message)")
            throw ConfigErrors(source: source, problems: [problem])
        }
        let problems = ProblemList()
        guard let top = ConfigSection<Key>(document, path: "", problems: problems) else {
            throw problems.errors(source: source)
        }
        // The version decides how everything else reads: with another one, the rest is not looked at.
        switch top[.version] {
        case nil:
            top.problem(.version, "missing; a state file starts with \"version\": \(version)")
            throw problems.errors(source: source)
        case let value? where value.integer == version:
            break
        case let value?:
            top.problem(.version, "\(value.shortDescription) is not a version this lb-server reads (only \(version))")
            throw problems.errors(source: source)
        }
        switch top[.writtenAt] {
        case nil, .string?: break
        case let other?: top.problem(.writtenAt, "expected a string, got \(other.kindDescription)")
        }
        let added = readAdded(top)
        let removed = readIDs(top, .removed)
        let draining = readIDs(top, .draining)
        let weights = readWeights(top)
        let addedIDs = Set(added.map(\.id))
        for id in removed where addedIDs.contains(id) {
            top.problem(.removed, "\(quoted(id)) is in added too; a server is either removed or added")
        }
        for id in removed where weights[id] != nil {
            top.problem(.removed, "\(quoted(id)) has a weight in weights too; a removed server has none")
        }
        for id in removed where draining.contains(id) {
            top.problem(.removed, "\(quoted(id)) is in draining too; a removed server cannot drain")
        }
        for id in weights.keys.sorted() where addedIDs.contains(id) {
            problems.add("weights.\(id)", "\(quoted(id)) is in added, whose entry carries its weight")
        }
        guard problems.isEmpty else { throw problems.errors(source: source) }
        return RuntimeChanges(added: added, removed: removed, weights: weights, draining: draining)
    }

    /// `added`: server objects with the keys `POST /manage/servers` takes, checked like a config file's servers.
    private static func readAdded(_ top: ConfigSection<Key>) -> [ServerSpec] {
        guard let value = top[.added] else { return [] }
        guard case .array(let elements) = value else {
            top.problem(.added, "expected an array of server objects, got \(value.kindDescription)")
            return []
        }
        var servers: [ServerSpec] = []
        var first: [String: Int] = [:]
        for (i, element) in elements.enumerated() {
            let path = "\(top.keyPath(.added))[\(i)]"
            guard let s = ConfigSection(element, path: path, problems: top.problems, accepting: AdminJSON.addKeys),
                let spec = ConfigLoader.readServer(s)
            else { continue }
            if let j = first[spec.id] {
                top.problems.add("\(path).id", "\(quoted(spec.id)) is used by added[\(j)] too")
                continue
            }
            first[spec.id] = i
            servers.append(spec)
        }
        return servers
    }

    /// `removed` and `draining`: arrays of server ids, each once.
    private static func readIDs(_ top: ConfigSection<Key>, _ key: Key) -> [String] {
        guard let value = top[key] else { return [] }
        guard case .array(let elements) = value else {
            top.problem(key, "expected an array of server ids, got \(value.kindDescription)")
            return []
        }
        var ids: [String] = []
        for (i, element) in elements.enumerated() {
            let path = "\(top.keyPath(key))[\(i)]"
            guard case .string(let id) = element else {
                top.problems.add(path, "expected a server id (a string), got \(element.kindDescription)")
                continue
            }
            if let problem = idProblem(id) {
                top.problems.add(path, problem)
            } else if ids.contains(id) {
                top.problems.add(path, "\(quoted(id)) is listed twice")
            } else {
                ids.append(id)
            }
        }
        return ids
    }

    /// `weights`: an object from server id to weight (0-1000, as in the config).
    private static func readWeights(_ top: ConfigSection<Key>) -> [String: Int] {
        guard let value = top[.weights] else { return [:] }
        guard case .object(let members) = value else {
            top.problem(.weights, "expected an object of server id to weight, got \(value.kindDescription)")
            return [:]
        }
        var weights: [String: Int] = [:]
        for member in members {
            let path = "\(top.keyPath(.weights)).\(member.key)"
            if let problem = idProblem(member.key) {
                top.problems.add(path, problem)
            } else if weights[member.key] != nil {
                top.problems.add(path, "given twice (JSON keeps only one; remove the other)")
            } else if let n = member.value.integer, ConfigLoader.weightRange.contains(n) {
                weights[member.key] = n
            } else if member.value.integer != nil {
                top.problems.add(path, "\(member.value.shortDescription) is \(describeRange(ConfigLoader.weightRange))")
            } else {
                top.problems.add(path, "expected an integer, got \(member.value.kindDescription)")
            }
        }
        return weights
    }

    /// The rule a config file's `servers[].id` follows.
    private static func idProblem(_ id: String) -> String? {
        guard id.isEmpty || id.contains(where: \.isWhitespace) else { return nil }
        return "\(quoted(id)) is not a server id (non-empty, no spaces)"
    }
}

/// One JSON object of the config being read, with typed getters that never throw: a bad value is recorded in
/// `problems` under its full key path and the getter returns the default, so reading goes on and every problem
/// in the file is reported together.
///
/// Creating a section checks its keys: unknown keys (with a "did you mean" when one is close) and keys written
/// twice are problems too. Single-threaded, internal to the loader.
struct ConfigSection {
    /// Key path of this object: "" for the top level, "routing", "servers[2]".
    let path: String
    let problems: ProblemList
    private let values: [String: JSONValue]

    /// Returns nil (after recording a problem) when `value` is not an object.
    init?(_ value: JSONValue, path: String, known: [String], problems: ProblemList) {
        self.path = path
        self.problems = problems
        guard case .object(let members) = value else {
            problems.add(path, "expected an object, got \(value.kindDescription)")
            return nil
        }
        var values: [String: JSONValue] = [:]
        for member in members {
            let keyPath = Self.join(path, member.key)
            if values[member.key] != nil {
                problems.add(keyPath, "given twice (JSON keeps only one; remove the other)")
            } else if !known.contains(member.key) {
                if let guess = closestName(to: member.key, among: known) {
                    problems.add(keyPath, "unknown key (did you mean \(guess)?)")
                } else {
                    problems.add(keyPath, "unknown key; valid keys here are \(known.joined(separator: ", "))")
                }
            }
            values[member.key] = member.value
        }
        self.values = values
    }

    func keyPath(_ key: String) -> String { Self.join(path, key) }

    /// "section.key", or "key" at the top level.
    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func problem(_ key: String, _ message: String) { problems.add(keyPath(key), message) }

    /// The raw value, if the key is present and known (null included).
    subscript(key: String) -> JSONValue? { values[key] }

    var isEmpty: Bool { values.isEmpty }

    private func typeProblem(_ key: String, expected: String, got value: JSONValue) {
        let got =
            value.kindDescription
            + (value.kindDescription == value.shortDescription ? "" : " (\(value.shortDescription))")
        problem(key, "expected \(expected), got \(got)")
    }

    func bool(_ key: String, default fallback: Bool) -> Bool {
        guard let value = values[key] else { return fallback }
        guard case .bool(let b) = value else {
            typeProblem(key, expected: "true or false", got: value)
            return fallback
        }
        return b
    }

    func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) -> Int {
        guard let value = values[key] else { return fallback }
        return checkedInt(key, value, in: range) ?? fallback
    }

    /// Like `int`, but `null` is a value of its own (e.g. "no limit").
    func optionalInt(_ key: String, default fallback: Int?, in range: ClosedRange<Int>) -> Int? {
        guard let value = values[key] else { return fallback }
        if value == .null { return nil }
        return checkedInt(key, value, in: range) ?? fallback
    }

    func checkedInt(_ key: String, _ value: JSONValue, in range: ClosedRange<Int>) -> Int? {
        guard let n = value.integer else {
            typeProblem(key, expected: "an integer", got: value)
            return nil
        }
        guard range.contains(n) else {
            problem(key, "\(n) is \(Self.describe(range))")
            return nil
        }
        return n
    }

    /// "out of range 1-65535", or "less than 1" when the range has no practical upper bound.
    static func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == .max
            ? "less than \(range.lowerBound)" : "out of range \(range.lowerBound)-\(range.upperBound)"
    }

    func string(_ key: String, default fallback: String) -> String {
        guard let value = values[key] else { return fallback }
        guard case .string(let s) = value else {
            typeProblem(key, expected: "a string", got: value)
            return fallback
        }
        return s
    }

    /// A string turned into a value by `convert`; its error message is recorded under this key.
    func parsed<T>(_ key: String, default fallback: T, _ convert: (String) throws(ConfigValueError) -> T) -> T {
        guard let value = values[key] else { return fallback }
        guard case .string(let s) = value else {
            typeProblem(key, expected: "a string", got: value)
            return fallback
        }
        do {
            return try convert(s)
        } catch {
            problem(key, error.message)
            return fallback
        }
    }

    /// One of a fixed set of names; the problem lists them all.
    func choice<E: RawRepresentable & CaseIterable>(_ key: String, default fallback: E) -> E
    where E.RawValue == String {
        parsed(key, default: fallback) { (s: String) throws(ConfigValueError) -> E in
            guard let e = E(rawValue: s) else { throw ConfigValueError("\(quoted(s)) is \(Self.notOneOf(E.self))") }
            return e
        }
    }

    /// "not one of a, b, c": every name of a config enum, for the file's and the flags' messages alike.
    static func notOneOf<E: RawRepresentable & CaseIterable>(_: E.Type) -> String where E.RawValue == String {
        "not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))"
    }

    func duration(_ key: String, default fallback: UInt64) -> UInt64 {
        guard let value = values[key] else { return fallback }
        do {
            return try ConfigDuration.milliseconds(value)
        } catch {
            problem(key, error.message)
            return fallback
        }
    }

    /// A nested object; nil when absent or not an object (the latter is recorded).
    func section(_ key: String, known: [String]) -> ConfigSection? {
        guard let value = values[key] else { return nil }
        return ConfigSection(value, path: keyPath(key), known: known, problems: problems)
    }
}

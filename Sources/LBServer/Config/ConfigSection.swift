/// The keys one JSON object of the config may have, declared once, as an enum per object (raw value = the key
/// as written). The unknown-key check lists the cases and every getter of `ConfigSection` takes a case, so a key
/// cannot be read under a name the check rejects, nor accepted by the check without a case the reader can use.
protocol ConfigKey: RawRepresentable, CaseIterable where RawValue == String {}

/// One JSON object of the config being read, with typed getters that never throw: a bad value is recorded in
/// `problems` under its full key path and the getter returns the default, so reading goes on and every problem
/// in the file is reported together.
///
/// Creating a section checks its keys against `Key`: unknown keys (with a "did you mean" when one is close) and
/// keys written twice are problems too. Single-threaded, internal to the loader.
struct ConfigSection<Key: ConfigKey> {
    /// Key path of this object: "" for the top level, "routing", "servers[2]".
    let path: String
    let problems: ProblemList
    private let values: [String: JSONValue]

    /// Returns nil (after recording a problem) when `value` is not an object. `accepting` narrows the keys
    /// allowed here to some of `Key` (the admin API takes a server without `health_check`).
    init?(_ value: JSONValue, path: String, problems: ProblemList, accepting keys: [Key] = Array(Key.allCases)) {
        self.path = path
        self.problems = problems
        guard case .object(let members) = value else {
            problems.add(path, "expected an object, got \(value.kindDescription)")
            return nil
        }
        let known = keys.map(\.rawValue)
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

    func keyPath(_ key: Key) -> String { Self.join(path, key.rawValue) }

    /// "section.key", or "key" at the top level.
    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func problem(_ key: Key, _ message: String) { problems.add(keyPath(key), message) }

    /// The raw value, if the key is present and known (null included).
    subscript(key: Key) -> JSONValue? { values[key.rawValue] }

    var isEmpty: Bool { values.isEmpty }

    private func typeProblem(_ key: Key, expected: String, got value: JSONValue) {
        let got =
            value.kindDescription
            + (value.kindDescription == value.shortDescription ? "" : " (\(value.shortDescription))")
        problem(key, "expected \(expected), got \(got)")
    }

    func bool(_ key: Key, default fallback: Bool) -> Bool {
        guard let value = self[key] else { return fallback }
        guard case .bool(let b) = value else {
            typeProblem(key, expected: "true or false", got: value)
            return fallback
        }
        return b
    }

    func int(_ key: Key, default fallback: Int, in range: ClosedRange<Int>) -> Int {
        guard let value = self[key] else { return fallback }
        return checkedInt(key, value, in: range) ?? fallback
    }

    /// Like `int`, but `null` is a value of its own (e.g. "no limit").
    func optionalInt(_ key: Key, default fallback: Int?, in range: ClosedRange<Int>) -> Int? {
        guard let value = self[key] else { return fallback }
        if value == .null { return nil }
        return checkedInt(key, value, in: range) ?? fallback
    }

    func checkedInt(_ key: Key, _ value: JSONValue, in range: ClosedRange<Int>) -> Int? {
        guard let n = value.integer else {
            typeProblem(key, expected: "an integer", got: value)
            return nil
        }
        guard range.contains(n) else {
            problem(key, "\(n) is \(describeRange(range))")
            return nil
        }
        return n
    }

    func string(_ key: Key, default fallback: String) -> String {
        guard let value = self[key] else { return fallback }
        guard case .string(let s) = value else {
            typeProblem(key, expected: "a string", got: value)
            return fallback
        }
        return s
    }

    /// A string turned into a value by `convert`; its error message is recorded under this key.
    func parsed<T>(_ key: Key, default fallback: T, _ convert: (String) throws(ConfigValueError) -> T) -> T {
        guard let value = self[key] else { return fallback }
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
    func choice<E: RawRepresentable & CaseIterable>(_ key: Key, default fallback: E) -> E
    where E.RawValue == String {
        parsed(key, default: fallback) { (s: String) throws(ConfigValueError) -> E in
            guard let e = E(rawValue: s) else { throw ConfigValueError("\(quoted(s)) is \(notOneOf(E.self))") }
            return e
        }
    }

    func duration(_ key: Key, default fallback: UInt64) -> UInt64 {
        guard let value = self[key] else { return fallback }
        do {
            return try ConfigDuration.milliseconds(value)
        } catch {
            problem(key, error.message)
            return fallback
        }
    }

    /// A nested object with keys `Sub`; nil when absent or not an object (the latter is recorded).
    func section<Sub: ConfigKey>(_ key: Key, of _: Sub.Type) -> ConfigSection<Sub>? {
        guard let value = self[key] else { return nil }
        return ConfigSection<Sub>(value, path: keyPath(key), problems: problems)
    }
}

/// "out of range 1-65535", or "less than 1" when the range has no practical upper bound.
func describeRange(_ range: ClosedRange<Int>) -> String {
    range.upperBound == .max ? "less than \(range.lowerBound)" : "out of range \(range.lowerBound)-\(range.upperBound)"
}

/// "not one of a, b, c": every name of a config enum, for the file's and the flags' messages alike.
func notOneOf<E: RawRepresentable & CaseIterable>(_: E.Type) -> String where E.RawValue == String {
    "not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))"
}

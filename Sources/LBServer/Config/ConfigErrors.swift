/// One thing wrong with a configuration, located by key path (`servers[2].port`), flag (`--backend "x:y"`)
/// or file position (`line 3, column 14`).
public struct ConfigProblem: Equatable, Sendable, CustomStringConvertible {
    /// Where the problem is; empty when it concerns the whole source (e.g. a missing file).
    public var location: String
    /// What is wrong and, where it helps, what would be valid.
    public var message: String

    public init(_ location: String, _ message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { location.isEmpty ? message : "\(location): \(message)" }
}

/// Every problem found in one configuration source. Loading never stops at the first problem (like `nginx -t`
/// and `haproxy -c`), so a person can fix a file in one pass.
///
/// `description` is meant to be printed as is, e.g.
/// ```
/// config.json: 2 problems
///   routing.algorithm: "foo" is not one of ring, maglev, rendezvous
///   servers[2].port: 70000 is out of range 1-65535
/// ```
public struct ConfigErrors: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file path, or "command line" for flags.
    public var source: String
    /// Never empty when thrown; in the order found (document order for files).
    public var problems: [ConfigProblem]

    public init(source: String, problems: [ConfigProblem]) {
        self.source = source
        self.problems = problems
    }

    public var description: String {
        if problems.count == 1 { return "\(source): \(problems[0])" }
        return (["\(source): \(problems.count) problems"] + problems.map { "  \($0)" }).joined(separator: "\n")
    }

    /// The problem messages as one line each, without the source; handy in tests.
    public var lines: [String] { problems.map(\.description) }
}

/// Why a single value (an address, a key source, a duration) was rejected. It does not know where the value came
/// from; the caller prefixes the key path or flag when it turns this into a `ConfigProblem`.
public struct ConfigValueError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Collects problems while a source is read; internal to the loader and the overrides.
final class ProblemList {
    private(set) var problems: [ConfigProblem] = []

    func add(_ location: String, _ message: String) { problems.append(ConfigProblem(location, message)) }

    var isEmpty: Bool { problems.isEmpty }

    func errors(source: String) -> ConfigErrors { ConfigErrors(source: source, problems: problems) }
}

/// The known name closest to `word` when it is plausibly a typo (edit distance at most 2, or 1 for short words).
func closestName(to word: String, among names: [String]) -> String? {
    let limit = word.count <= 4 ? 1 : 2
    var best: (name: String, distance: Int)?
    for name in names {
        let d = editDistance(word.lowercased(), name)
        if d <= limit && d < (best?.distance ?? .max) { best = (name, d) }
    }
    return best?.name
}

/// Levenshtein distance over characters; the inputs are short key names.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var row = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        row[0] = i
        for j in 1...b.count {
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &row)
    }
    return previous[b.count]
}

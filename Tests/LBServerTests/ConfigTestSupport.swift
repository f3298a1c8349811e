import LBServer
import XCTest

/// Parses `json` with servers not required unless asked, so each test writes only the keys it is about.
func parseConfig(_ json: String, requireServers: Bool = false) throws(ConfigErrors) -> LBConfig {
    try ConfigLoader.parse(bytes: Array(json.utf8), source: "test.json", requireServers: requireServers)
}

/// The problem lines `json` produces, or [] when it is valid.
func configProblems(_ json: String, requireServers: Bool = false) -> [String] {
    do {
        _ = try parseConfig(json, requireServers: requireServers)
        return []
    } catch {
        return error.lines
    }
}

/// Asserts that `json` is rejected with exactly one problem, and that it starts with `prefix` (the key path)
/// and contains every one of `fragments`.
func assertSingleProblem(
    _ json: String, startsWith prefix: String, contains fragments: String..., file: StaticString = #filePath,
    line: UInt = #line
) {
    let lines = configProblems(json)
    XCTAssertEqual(lines.count, 1, "expected one problem, got \(lines)", file: file, line: line)
    guard let first = lines.first else { return }
    XCTAssertTrue(first.hasPrefix(prefix), "\(first) does not start with \(prefix)", file: file, line: line)
    for fragment in fragments {
        XCTAssertTrue(first.contains(fragment), "\(first) does not contain \(fragment)", file: file, line: line)
    }
}

import Foundation
import XCTest

/// A test needs a command that `make test` installs (its `test-deps` target) and `.ci/run` installs in CI, and it is
/// not in `PATH`.
struct MissingTool: Error, CustomStringConvertible {
    let names: [String]
    let package: String
    let underCI: Bool
    var description: String {
        "\(names.joined(separator: " or ")) is not installed (Debian package \(package)); .ci/run installs it, and so "
            + "does `make test` as root or with password-less sudo"
            + (underCI ? ". CI is set, so the test fails instead of skipping" : "")
    }
}

extension IntegrationTestCase {
    /// True under CI: `CI` is set to anything but `0` or `false`, as CI services do and `.ci/run` makes sure of.
    static var runsUnderCI: Bool {
        let value = ProcessInfo.processInfo.environment["CI"] ?? ""
        return !value.isEmpty && value != "0" && value.lowercased() != "false"
    }

    /// The path of the first of `names` found in `PATH`.
    ///
    /// Without any of them the test skips on a developer's machine (`make test` installs the package when it can,
    /// and says which tests will skip when it cannot) and fails under CI, where the package is installed: a CI run
    /// must not pass by skipping the check.
    /// - Throws: `MissingTool` under CI, `XCTSkip` otherwise.
    func requiredTool(_ names: String..., package: String) throws -> String {
        if let path = names.lazy.compactMap({ ManagedProcess.resolveExecutable($0) }).first { return path }
        let missing = MissingTool(names: names, package: package, underCI: Self.runsUnderCI)
        if Self.runsUnderCI { throw missing }
        throw XCTSkip(missing.description)
    }

    /// The first python3 in which `import MODULE` works: the one in `PATH`, then Debian's `/usr/bin/python3`, where
    /// the apt package installs the module (a pyenv or virtualenv python3 earlier in `PATH` does not see it).
    /// Otherwise as `requiredTool` (skip, or fail under CI).
    func requiredPythonModule(_ module: String, package: String) throws -> String {
        let candidates = [ManagedProcess.resolveExecutable("python3"), "/usr/bin/python3"].compactMap { $0 }
            .filter { FileManager.default.isExecutableFile(atPath: $0) }
        if candidates.isEmpty { _ = try requiredTool("python3", package: "python3") }
        for python in candidates where ManagedProcess.run(python, ["-c", "import \(module)"], timeout: 30).status == 0 {
            return python
        }
        let missing = MissingTool(names: ["python3's \(module) module"], package: package, underCI: Self.runsUnderCI)
        if Self.runsUnderCI { throw missing }
        throw XCTSkip(missing.description)
    }
}

import Foundation
import XCTest

/// Starting `lb-server` with a config file, for the HTTP-engine tests.
///
/// Every proxy these tests start has active health checks off, so a `SpyBackend`'s record holds only what clients
/// sent through the proxy (a probe would otherwise count as "something reached the backend").
extension IntegrationTestCase {
    /// Writes `settings` (merged over `health_check.enabled: false`) as a JSON config file, starts `lb-server
    /// --config FILE --backend ADDR...` on port 0 and returns it. The file is removed at tear-down.
    ///
    /// - Parameter settings: top-level config keys, e.g. `["timeouts": ["client_header": "500ms"]]`; a nested
    ///   `health_check` object replaces the default one.
    func startProxy(backends: [String], settings: [String: Any] = [:]) throws -> LBServerProcess {
        try LBBinaries.startServer(backends: backends, configFile: try writeConfigFile(settings))
    }

    /// Writes `settings` (merged over `health_check.enabled: false`) as a JSON config file and returns its path;
    /// the file is removed at tear-down.
    func writeConfigFile(_ settings: [String: Any]) throws -> String {
        var config: [String: Any] = ["health_check": ["enabled": false]]
        config.merge(settings) { _, new in new }
        let data = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("lb-itest-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString).json")
            .path
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}

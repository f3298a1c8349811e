@testable import LBServer
import XCTest

/// The `stats` section: latency histograms on by default, switchable off, unknown keys named.
final class ConfigStatsTests: XCTestCase {
    private func parse(_ text: String) throws -> LBConfig {
        try ConfigLoader.parse(bytes: Array(text.utf8), source: "test.json", requireServers: false)
    }

    func testLatencyHistogramsAreOnByDefault() throws {
        XCTAssertTrue(try parse("{}").stats.latency)
        XCTAssertTrue(ProxySettings(config: try parse("{}")).recordLatency)
    }

    func testLatencyHistogramsCanBeSwitchedOff() throws {
        let config = try parse(#"{"stats": {"latency": false}}"#)
        XCTAssertFalse(config.stats.latency)
        XCTAssertFalse(ProxySettings(config: config).recordLatency)
    }

    func testUnknownStatsKeyAndWrongTypeAreNamed() {
        XCTAssertThrowsError(try parse(#"{"stats": {"latnecy": false}}"#)) { error in
            XCTAssertTrue("\(error)".contains("stats.latnecy"), "\(error)")
        }
        XCTAssertThrowsError(try parse(#"{"stats": {"latency": "no"}}"#)) { error in
            XCTAssertTrue("\(error)".contains("stats.latency"), "\(error)")
        }
    }
}

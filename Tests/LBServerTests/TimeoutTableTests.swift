import Foundation
import XCTest

@testable import LBServer

/// The `Timeout` table is the one list of timeouts: every key it names is read, defaulted, documented and
/// handed to the connection timer, with nothing else to keep in step.
final class TimeoutTableTests: XCTestCase {
    func testEveryTimeoutKeyRoundTripsAndLeavesTheOthersAtTheirDefaults() throws {
        for timeout in Timeout.allCases {
            let config = try parseConfig(#"{"timeouts": {"\#(timeout.key)": "1234ms"}}"#)
            for other in Timeout.allCases {
                XCTAssertEqual(config.timeouts[other], other == timeout ? 1234 : other.defaultMs, "\(other)")
            }
        }
    }

    func testAnEmptyConfigHasEveryDefaultOfTheTable() throws {
        let config = try parseConfig("{}")
        for timeout in Timeout.allCases { XCTAssertEqual(config.timeouts[timeout], timeout.defaultMs) }
        XCTAssertEqual(config.timeouts, LBConfig.Timeouts())
    }

    func testAnUnknownTimeoutKeyListsTheTableKeys() {
        assertSingleProblem(
            #"{"timeouts": {"zzzzzz": 1}}"#, startsWith: "timeouts.zzzzzz:",
            contains: "valid keys here are \(Timeout.allCases.map(\.key).joined(separator: ", "))")
    }

    func testEveryConnectionPhaseIsGovernedByExactlyOneTimeout() {
        for phase in ConnectionTimer.Phase.allCases where phase != .none {
            XCTAssertEqual(Timeout.allCases.filter { $0.phase == phase }.count, 1, "\(phase)")
        }
        XCTAssertFalse(Timeout.allCases.contains { $0.phase == ConnectionTimer.Phase.none })
    }

    func testEachPhaseExpiresAfterTheTimeoutTheFileGaveIt() throws {
        // Distinct values, so a phase reading another timeout's value shows.
        let timeouts = Timeout.allCases.enumerated().map { #""\#($1.key)": "\#(1000 + $0)ms""# }
        let config = try parseConfig(#"{"timeouts": {\#(timeouts.joined(separator: ", "))}}"#)
        let limits = ProxySettings(config: config).timeouts
        for timeout in Timeout.allCases {
            guard let phase = timeout.phase else { continue }
            let ms = config.timeouts[timeout]
            XCTAssertEqual(limits[phase], ms, "\(phase)")
            var timer = ConnectionTimer()
            timer.enter(phase, now: 5, limits: limits)
            XCTAssertEqual(timer.expired(now: 5 + ms - 1), .none, "\(phase)")
            XCTAssertEqual(timer.expired(now: 5 + ms), phase)
        }
    }

    func testThePerTryTimeoutCapsTheResponsePhase() throws {
        let config = try parseConfig(#"{"retries": {"per_try_timeout": "5s"}}"#)
        XCTAssertEqual(ProxySettings(config: config).timeouts.upstreamResponse, 5000)
        XCTAssertEqual(ProxySettings(config: LBConfig()).timeouts.upstreamResponse, 30_000)
    }

    /// The configuration reference documents each key with the table's default, in seconds.
    func testTheConfigurationDocDocumentsEveryTimeoutWithItsDefault() throws {
        let readme = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/configuration.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        for timeout in Timeout.allCases {
            let ms = timeout.defaultMs
            let spelled = ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
            let row = "| `timeouts.\(timeout.key)` | duration | `\"\(spelled)\"` |"
            XCTAssertTrue(text.contains(row), "docs/configuration.md lacks \(row)")
        }
    }
}

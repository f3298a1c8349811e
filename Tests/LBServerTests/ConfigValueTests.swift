import XCTest

@testable import LBServer

/// Durations, addresses and key sources: the value parsers shared by the file and the flags.
final class ConfigValueTests: XCTestCase {
    // MARK: Durations

    func testDurationsAcceptUnitsAndBareSeconds() throws {
        let cases: [(String, UInt64)] = [
            (#""1.5s""#, 1500), (#""250ms""#, 250), ("3", 3000), (#""1m""#, 60_000), ("0.25", 250),
            (#""2h""#, 7_200_000),
            (#""10s""#, 10_000),
        ]
        for (literal, ms) in cases {
            let config = try parseConfig(#"{"timeouts": {"client_idle": \#(literal)}}"#)
            XCTAssertEqual(config.timeouts[.clientIdle], ms, literal)
        }
    }

    func testBadDurationsSayWhatIsAccepted() {
        for literal in [#""3x""#, #""s""#, #""1 s""#, #""inf s""#, #""-2s""#, "true", #""""#] {
            let lines = configProblems(#"{"timeouts": {"client_idle": \#(literal)}}"#)
            XCTAssertEqual(lines.count, 1, literal)
            XCTAssertTrue(lines.first?.hasPrefix("timeouts.client_idle:") ?? false, "\(lines)")
        }
        XCTAssertEqual(
            configProblems(#"{"timeouts": {"client_idle": "3x"}}"#),
            [
                #"timeouts.client_idle: "3x" is not a duration; use a number of seconds or a string like "500ms", "2s", "1m""#
            ])
    }

    func testDurationsMustBePositiveAndAtLeastOneMillisecond() {
        XCTAssertEqual(
            configProblems(#"{"timeouts": {"client_idle": 0}}"#), ["timeouts.client_idle: 0 must be greater than 0"])
        XCTAssertEqual(
            configProblems(#"{"timeouts": {"client_idle": "0.1ms"}}"#),
            [#"timeouts.client_idle: "0.1ms" is shorter than 1ms"#])
        XCTAssertEqual(
            configProblems(#"{"timeouts": {"client_idle": "9999h"}}"#),
            [#"timeouts.client_idle: "9999h" is longer than a week"#])
    }

    func testDurationFormatPicksTheLargestExactUnit() {
        XCTAssertEqual(ConfigDuration.format(1500), "1500ms")
        XCTAssertEqual(ConfigDuration.format(2000), "2s")
        XCTAssertEqual(ConfigDuration.format(60_000), "1m")
        XCTAssertEqual(ConfigDuration.format(3_600_000), "1h")
    }

    // MARK: HostPort

    func testHostPortParsesNamesIPv4IPv6AndBarePort() throws {
        XCTAssertEqual(try HostPort(parsing: "127.0.0.1:8080"), HostPort(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(try HostPort(parsing: "localhost:8080"), HostPort(host: "localhost", port: 8080))
        XCTAssertEqual(try HostPort(parsing: "[::1]:8080"), HostPort(host: "::1", port: 8080))
        XCTAssertEqual(try HostPort(parsing: "[fe80::1%eth0]:80"), HostPort(host: "fe80::1%eth0", port: 80))
        XCTAssertEqual(try HostPort(parsing: ":8080"), HostPort(host: "0.0.0.0", port: 8080))
    }

    func testHostPortDescriptionRoundTrips() throws {
        for text in ["127.0.0.1:8080", "[::1]:8080", "example.com:1"] {
            XCTAssertEqual(try HostPort(parsing: text).description, text)
        }
    }

    func testPortZeroIsOnlyForListenAddresses() throws {
        XCTAssertEqual(try HostPort(parsing: "127.0.0.1:0").port, 0)
        XCTAssertThrowsError(try HostPort(parsing: "127.0.0.1:0", allowPortZero: false)) {
            XCTAssertEqual("\($0)", "port 0 is out of range 1-65535")
        }
    }

    func testHostPortRejectsMalformedInputWithAReason() {
        let cases: [(String, String)] = [
            ("8080", "missing ':PORT'"),
            ("host:", "port is empty"),
            ("host:abc", #"port "abc" is not a number"#),
            ("host:+80", #"port "+80" is not a number"#),
            ("host:65536", "port 65536 is out of range 0-65535"),
            ("::1:8080", "IPv6 addresses need brackets"),
            ("[::1]", "missing ':PORT' after ']'"),
            ("[::1:80", "missing ']'"),
            ("[1.2.3.4]:80", "brackets are only for IPv6"),
            ("my host:80", "contains"),
            ("", "missing ':PORT'"),
        ]
        for (input, fragment) in cases {
            XCTAssertThrowsError(try HostPort(parsing: input), input) {
                XCTAssertTrue("\($0)".contains(fragment), "\(input): \($0)")
            }
        }
    }

    // MARK: KeySource

    func testKeySourceParsesEveryForm() throws {
        XCTAssertEqual(try KeySource(parsing: "path"), .path)
        XCTAssertEqual(try KeySource(parsing: "uri"), .uri)
        XCTAssertEqual(try KeySource(parsing: "host"), .host)
        XCTAssertEqual(try KeySource(parsing: "client-ip"), .clientIP)
        XCTAssertEqual(try KeySource(parsing: "header:X-User-ID"), .header("x-user-id"))
        XCTAssertEqual(try KeySource(parsing: "cookie:Session"), .cookie("Session"))
        XCTAssertEqual(try KeySource(parsing: "query:user"), .query("user"))
    }

    func testKeySourceDescriptionRoundTrips() throws {
        for text in ["path", "uri", "host", "client-ip", "header:x-user", "cookie:sid", "query:q"] {
            XCTAssertEqual(try KeySource(parsing: text).description, text)
        }
    }

    func testBadKeySourceListsTheValidForms() {
        XCTAssertThrowsError(try KeySource(parsing: "ip")) {
            XCTAssertEqual(
                "\($0)",
                #""ip" is not a key source; use path, uri, host, client-ip, header:NAME, cookie:NAME or query:NAME"#)
        }
        XCTAssertThrowsError(try KeySource(parsing: "body:x")) { XCTAssertTrue("\($0)".contains("header:NAME")) }
        XCTAssertThrowsError(try KeySource(parsing: "header:")) { XCTAssertTrue("\($0)".contains("needs a name")) }
        XCTAssertThrowsError(try KeySource(parsing: "header:a b")) {
            XCTAssertTrue("\($0)".contains("not a valid header name"))
        }
    }

    // MARK: JSON details the loader relies on

    func testJSONStringEscapesAndUnicodeAreDecoded() throws {
        let config = try parseConfig(#"{"admin": {"token": "a\"b\\c\u00e9\ud83d\ude00"}}"#)
        XCTAssertEqual(config.admin.token, "a\"b\\cé😀")
    }

    func testJSONNestingIsBounded() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertEqual(configProblems(#"{"x": \#(deep)}"#).first?.contains("nesting deeper than 64"), true)
    }
}

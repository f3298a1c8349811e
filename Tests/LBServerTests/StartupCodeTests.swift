import XCTest

@testable import LBServer

#if canImport(Glibc)
    import Glibc
#endif

/// `StartupCode.release()` must find this process's own text mapping, shrink the file-backed resident set, and
/// leave every page it dropped usable: the code that runs afterwards faults back in from the page cache.
final class StartupCodeTests: XCTestCase {
    /// `RssFile` of this process in kB, from /proc/self/status.
    private func residentFileKB() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("RssFile:") })
        return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    func testFindsTheExecutablesTextMapping() throws {
        let text = try XCTUnwrap(StartupCode.textSegment())
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        XCTAssertEqual(Int(text.start) % page, 0)
        XCTAssertEqual(text.count % page, 0)
        XCTAssertGreaterThan(text.count, 1 << 20, "the test binary's text is megabytes")
        // The code running this test lies inside it.
        let here = unsafeBitCast(StartupCodeTests.probe as @convention(c) () -> Int32, to: UInt.self)
        XCTAssertTrue((text.start..<text.start + UInt(text.count)).contains(here), "probe at \(here) outside text")
    }

    func testReleaseShrinksTheResidentTextAndCodeStillRuns() throws {
        let before = try residentFileKB()
        XCTAssertGreaterThan(StartupCode.release(), 0)
        let after = try residentFileKB()
        XCTAssertLessThan(after, before, "RssFile \(before) kB -> \(after) kB")
        // Code the release dropped runs again: parse a request head.
        let fed = feed(.request, [bytes("GET /after-release HTTP/1.1\r\nHost: a\r\n\r\n")])
        guard case .head(let head)? = fed.events.first else { return XCTFail("no head: \(fed.events)") }
        XCTAssertEqual(head.target, "/after-release")
        XCTAssertEqual(StartupCodeTests.probe(), 42)
    }

    private static let probe: @convention(c) () -> Int32 = { 42 }
}

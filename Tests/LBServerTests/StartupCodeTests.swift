import LBHTTP
import XCTest

@testable import LBServer

#if canImport(Glibc)
    import Glibc
#endif

/// `StartupCode.release()` must find this process's own text mapping, shrink the file-backed resident set, and
/// leave every page it dropped usable: the code that runs afterwards faults back in from the page cache. A text
/// page someone wrote to (a breakpoint, a uprobe) must never be dropped.
final class StartupCodeTests: XCTestCase {
    /// `RssFile` of this process in kB, from /proc/self/status.
    private func residentFileKB() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("RssFile:") })
        return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    private static let probe: @convention(c) () -> Int32 = { 42 }
    private var probeAddress: UInt { unsafeBitCast(StartupCodeTests.probe, to: UInt.self) }

    /// The mapping holding `address`.
    private func mapping(holding address: UInt) -> StartupCode.Mapping? {
        StartupCode.textMappings().first { ($0.start..<$0.start + UInt($0.count)).contains(address) }
    }

    func testFindsTheExecutablesTextMapping() throws {
        let mappings = StartupCode.textMappings()
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        XCTAssertFalse(mappings.isEmpty)
        for m in mappings {
            XCTAssertEqual(Int(m.start) % page, 0)
            XCTAssertEqual(m.count % page, 0)
        }
        XCTAssertGreaterThan(mappings.map(\.count).reduce(0, +), 1 << 20, "the test binary's text is megabytes")
        // The code running this test lies inside it, and nothing wrote to it.
        let m = try XCTUnwrap(mapping(holding: probeAddress), "probe at \(probeAddress) outside the text")
        XCTAssertEqual(m.privateKB, 0)
    }

    func testReleaseShrinksTheResidentTextAndCodeStillRuns() throws {
        let before = try residentFileKB()
        XCTAssertGreaterThan(StartupCode.release(), 0)
        let after = try residentFileKB()
        XCTAssertLessThan(after, before, "RssFile \(before) kB -> \(after) kB")
        // Code the release dropped runs again: parse a request head.
        var parser = HTTPParser(kind: .request)
        let input = Array("GET /after-release HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        var pos = 0
        XCTAssertEqual(input.withUnsafeBytes { parser.next($0, &pos) }, .head)
        XCTAssertEqual(parser.head.string(parser.head.target), "/after-release")
        XCTAssertEqual(StartupCodeTests.probe(), 42)
    }

    func testATextPageSomeoneWroteToIsNeverDropped() throws {
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let page = try XCTUnwrap(UnsafeMutableRawPointer(bitPattern: probeAddress & ~(pageSize - 1)))
        // What a debugger does to set a breakpoint: make the page writable and write to it (the same byte here,
        // so the code is unchanged), which gives this process a private copy of the page.
        guard mprotect(page, Int(pageSize), PROT_READ | PROT_WRITE | PROT_EXEC) == 0 else {
            throw XCTSkip("mprotect(PROT_WRITE) on text refused here")
        }
        let target = page + Int(probeAddress & (pageSize - 1))
        target.storeBytes(of: target.load(as: UInt8.self), as: UInt8.self)
        XCTAssertEqual(mprotect(page, Int(pageSize), PROT_READ | PROT_EXEC), 0)

        let written = try XCTUnwrap(mapping(holding: probeAddress))
        XCTAssertGreaterThan(written.privateKB, 0, "the written page is a private copy")
        let total = StartupCode.textMappings().map(\.count).reduce(0, +)
        XCTAssertEqual(StartupCode.release(), total - written.count, "every mapping but the written one")
        XCTAssertEqual(try XCTUnwrap(mapping(holding: probeAddress)).privateKB, written.privateKB, "copy kept")
        XCTAssertEqual(StartupCodeTests.probe(), 42)

        // Put the file's page back (its bytes are the same) so later tests see clean text.
        XCTAssertEqual(madvise(page, Int(pageSize), MADV_DONTNEED), 0)
        XCTAssertEqual(try XCTUnwrap(mapping(holding: probeAddress)).privateKB, 0)
    }
}

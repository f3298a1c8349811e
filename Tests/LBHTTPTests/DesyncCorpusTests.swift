import Foundation
import XCTest

@testable import LBHTTP

/// The http-desync-guardian request corpus (/work/shared/conformance/desync-guardian), turned into raw
/// requests by Tests/conformance/desync_cases.py (checked in as desync_cases.json; regenerate with
/// `python3 Tests/conformance/desync_cases.py > Tests/conformance/desync_cases.json`).
///
/// Every Severe case must be rejected (never forwarded) and every Compliant case must parse (forwarded).
final class DesyncCorpusTests: XCTestCase {
    struct Case: Decodable {
        var file: String
        var name: String
        var tier: String
        var hex: String
        var bytes: [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(hex.utf8.count / 2)
            var it = hex.utf8.makeIterator()
            while let a = it.next(), let b = it.next() {
                out.append(UInt8(HTTPSyntax.hexValue(a)! << 4 | HTTPSyntax.hexValue(b)!))
            }
            return out
        }
    }

    static func loadCases() throws -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../conformance/desync_cases.json").standardized
        return try JSONDecoder().decode([Case].self, from: Data(contentsOf: url))
    }

    static func outcome(_ c: Case) -> FeedResult {
        let input = c.bytes
        let whole = feed(.request, [input])
        let bytewise = feed(.request, input.map { [$0] })
        XCTAssertEqual(whole.events, bytewise.events, "\(c.file): \(c.name): whole vs byte by byte")
        if whole.events.last == .end {
            let twice = feed(.request, [input + input])
            XCTAssertEqual(twice.events, whole.events + whole.events, "\(c.file): \(c.name): pipelined")
        } else {
            let pieces = stride(from: 0, to: input.count, by: 7).map { Array(input[$0..<min($0 + 7, input.count)]) }
            XCTAssertEqual(feed(.request, pieces).events, whole.events, "\(c.file): \(c.name): 7-byte pieces")
        }
        return whole
    }

    func testCorpusSevereRejectedAndCompliantAccepted() throws {
        let cases = try Self.loadCases()
        XCTAssertGreaterThan(cases.count, 150)
        var counts: [String: (accepted: Int, rejected: Int)] = [:]
        for c in cases {
            let r = Self.outcome(c)
            let rejected = r.error != nil
            counts[c.tier, default: (0, 0)].accepted += rejected ? 0 : 1
            counts[c.tier, default: (0, 0)].rejected += rejected ? 1 : 0
            // Accepted = a valid head (a few cases announce more body than the script appends).
            if !rejected { XCTAssertNotNil(r.firstHead, "\(c.name): \(r.events)") }
            if ProcessInfo.processInfo.environment["DESYNC_VERBOSE"] != nil {
                print("\(c.tier) \(rejected ? "rejected \(r.error!)" : "accepted"): \(c.file): \(c.name)")
            }
            switch c.tier {
            case "Severe":
                XCTAssertTrue(rejected, "Severe case accepted: \(c.file): \(c.name)")
            case "Compliant":
                XCTAssertFalse(rejected, "Compliant case rejected: \(c.file): \(c.name): \(r.events)")
            default:
                break
            }
        }
        XCTAssertEqual(counts["Severe"]?.accepted, 0)
        XCTAssertEqual(counts["Compliant"]?.rejected, 0)
        XCTAssertEqual(counts["Severe"]?.rejected, cases.filter { $0.tier == "Severe" }.count)
        for (tier, n) in counts.sorted(by: { $0.key < $1.key }) {
            print("desync corpus \(tier): \(n.accepted) accepted, \(n.rejected) rejected")
        }
    }
}

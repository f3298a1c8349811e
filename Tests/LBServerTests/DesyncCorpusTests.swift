import Foundation
import XCTest

@testable import LBServer

/// The http-desync-guardian request corpus (/work/shared/conformance/desync-guardian), turned into raw
/// requests by Tests/conformance/desync_cases.py (checked in as desync_cases.json; regenerate with
/// `python3 Tests/conformance/desync_cases.py > Tests/conformance/desync_cases.json`).
///
/// Severe cases must be rejected; Compliant cases must parse, except the ones listed in
/// `compliantButRejectedByPolicy`, where lb's rules are deliberately stricter than that corpus.
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

    /// Compliant in the corpus, rejected by lb's rules (see HTTPHeadParser): name → expected error.
    static let compliantButRejectedByPolicy: [String: HTTPParseError] = [
        // Empty request-target: no form of RFC 9112 §3.2 is empty.
        "Empty URI": .invalidTarget,
        // Raw UTF-8 in the target: we accept visible ASCII only (RFC 3986; clients percent-encode).
        "International in URI": .invalidTarget,
        // We implement only `chunked` alone; other codings before it → 501 (RFC 9112 §6.1 lets a server
        // refuse codings it does not implement; the proxy would otherwise forward codings it cannot check).
        "Correct TE OK": .unsupportedTransferCoding,
        "Transfer-Encoding: identity and chunked OK": .unsupportedTransferCoding,
        "Multiple transfer encoding headers in a single request OK": .unsupportedTransferCoding,
        "Different Transfer-Encoding headers": .unsupportedTransferCoding,
        "Different Transfer-Encoding headers combined": .unsupportedTransferCoding,
        // Parameters on a coding ("chunked;custom_param;") are not a bare token → 400 (no parameters are
        // defined for chunked, and "custom_param" without "=" is not even a transfer-parameter).
        "TE with custom parameters OK": .invalidTransferEncoding,
        "Transfer-Encoding with a param: chunked;custom_param": .invalidTransferEncoding,
    ]

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
        var seenPolicyNames = Set<String>()
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
                if let expected = Self.compliantButRejectedByPolicy[c.name] {
                    seenPolicyNames.insert(c.name)
                    XCTAssertEqual(r.error, expected, "\(c.file): \(c.name)")
                } else {
                    XCTAssertFalse(rejected, "Compliant case rejected: \(c.file): \(c.name): \(r.events)")
                }
            default:
                break
            }
        }
        XCTAssertEqual(seenPolicyNames, Set(Self.compliantButRejectedByPolicy.keys), "policy list out of date")
        for (tier, n) in counts.sorted(by: { $0.key < $1.key }) {
            print("desync corpus \(tier): \(n.accepted) accepted, \(n.rejected) rejected")
        }
    }
}

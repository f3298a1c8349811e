import XCTest

@testable import LBHTTP

/// The word-at-a-time scans must agree with the byte-by-byte definitions for every position and length:
/// a line break or a bad byte in any of the 8 lanes, at word boundaries, in the tail, next to bytes that
/// differ from CR/LF/DEL/0x20 by one bit (where a borrow could leak), and with obs-text (high bit set).
final class HTTPSyntaxScanTests: XCTestCase {
    private func naiveLineBreak(_ b: [UInt8], _ from: Int, _ to: Int) -> Int {
        (from..<to).first { b[$0] == ASCII.cr || b[$0] == ASCII.lf } ?? to
    }

    private func naiveFieldValue(_ b: [UInt8], _ r: Range<Int>) -> Bool {
        r.allSatisfy { HTTPSyntax.isFieldValueByte(b[$0]) }
    }

    /// Bytes near the ones the scans look for, plus ordinary text and obs-text.
    private let alphabet: [UInt8] = [
        0x00, 0x01, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x1F, 0x20, 0x21, 0x3A, 0x41, 0x61, 0x7E, 0x7F,
        0x80, 0x8A, 0x8D, 0xA0, 0xFF,
    ]

    func testRandomBuffersAgreeWithTheByteDefinitions() {
        var rng = SplitMix64(seed: 0x5CA9)
        for _ in 0..<20_000 {
            let count = Int(rng.next() % 40)
            var bytes = [UInt8](repeating: 0x61, count: count)
            // Mostly clean text with a few special bytes, so runs of clean words are common.
            for i in bytes.indices where rng.next() % 6 == 0 { bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let from = count == 0 ? 0 : Int(rng.next() % UInt64(count + 1))
            let to = from + Int(rng.next() % UInt64(count - from + 1))
            bytes.withUnsafeBytes { raw in
                XCTAssertEqual(HTTPSyntax.firstLineBreak(raw, from: from, to: to), naiveLineBreak(bytes, from, to), "\(bytes) \(from)..<\(to)")
            }
            bytes.withUnsafeBufferPointer { p in
                XCTAssertEqual(HTTPSyntax.allFieldValueBytes(p, from..<to), naiveFieldValue(bytes, from..<to), "\(bytes) \(from)..<\(to)")
            }
        }
    }

    func testEveryByteValueInEveryLane() {
        for lane in 0..<19 {
            for v in 0...255 {
                var bytes = [UInt8](repeating: 0x78, count: 19)
                bytes[lane] = UInt8(v)
                bytes.withUnsafeBytes { raw in
                    XCTAssertEqual(HTTPSyntax.firstLineBreak(raw, from: 0, to: 19), naiveLineBreak(bytes, 0, 19), "\(v) at \(lane)")
                }
                bytes.withUnsafeBufferPointer { p in
                    XCTAssertEqual(HTTPSyntax.allFieldValueBytes(p, 0..<19), naiveFieldValue(bytes, 0..<19), "\(v) at \(lane)")
                }
            }
        }
    }

    func testEmptyBuffers() {
        let empty: [UInt8] = []
        empty.withUnsafeBytes { XCTAssertEqual(HTTPSyntax.firstLineBreak($0, from: 0, to: 0), 0) }
        empty.withUnsafeBufferPointer { XCTAssertTrue(HTTPSyntax.allFieldValueBytes($0, 0..<0)) }
    }
}

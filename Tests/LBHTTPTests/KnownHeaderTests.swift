import XCTest

@testable import LBHTTP

/// `KnownHeader.lookup` picks one candidate by (length, first byte): every known name, in any case, must
/// still be found, and look-alikes of the same length and first byte must not be.
final class KnownHeaderTests: XCTestCase {
    private func lookup(_ name: String) -> KnownHeader {
        let bytes = Array(name.utf8)
        return bytes.withUnsafeBufferPointer { KnownHeader.lookup($0, 0..<bytes.count) }
    }

    func testEveryKnownNameIsFoundInAnyCase() {
        for raw in 1..<KnownHeader.names.count {
            let known = KnownHeader(rawValue: UInt8(raw))!
            let name = KnownHeader.names[raw].description
            XCTAssertEqual(lookup(name), known, name)
            XCTAssertEqual(lookup(name.uppercased()), known, name.uppercased())
            let mixed = String(name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
            XCTAssertEqual(lookup(mixed), known, mixed)
        }
    }

    func testLookAlikesAndOtherNamesAreOther() {
        for name in [
            "hosts", "hast", "content-lengt", "content-lengthx", "contentxlength", "transfer_encoding", "connectiom",
            "keep_alive", "tf", "upgradx", "trailex", "x-forwarded-fox", "x-forwarded-prot0", "forwardex", "x-request-ix",
            "cookies", "expecT1", "a", "", "accept", "user-agent", "x-forwarded-hosT!",
        ] {
            XCTAssertEqual(lookup(name), .other, name)
        }
    }
}

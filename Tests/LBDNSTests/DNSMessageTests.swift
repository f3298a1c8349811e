import XCTest

@testable import LBDNS

/// The answer reader: sections, compression, SRV and address records, TTLs, and bytes that are not a message.
final class DNSMessageTests: XCTestCase {
    /// A message built by hand: header, one question, then records, with `name` encoded in full or as a pointer.
    private struct Builder {
        var bytes: [UInt8] = []
        var counts = (an: 0, ar: 0)

        static func name(_ text: String) -> [UInt8] {
            text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
        }

        init(rcode: UInt8 = 0, question: String) {
            bytes = [0x12, 0x34, 0x81, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0]
            bytes += Self.name(question) + [0, 33, 0, 1]
        }

        mutating func record(_ owner: [UInt8], type: UInt16, ttl: UInt32, data: [UInt8], additional: Bool = false) {
            bytes += owner + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
            bytes += [UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF)]
            bytes += [UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
            if additional { counts.ar += 1 } else { counts.an += 1 }
            bytes[7] = UInt8(counts.an)
            bytes[11] = UInt8(counts.ar)
        }
    }

    func testAnSRVAnswerWithAddressesInTheAdditionalSectionIsRead() throws {
        var b = Builder(question: "_http._tcp.Example.test")
        let question: [UInt8] = [0xC0, 12]  // a pointer to the question's name
        b.record(question, type: 33, ttl: 30, data: [0, 10, 0, 5, 0x1F, 0x90] + Builder.name("b1.example.test"))
        b.record(question, type: 33, ttl: 20, data: [0, 20, 0, 0, 0x1F, 0x91] + Builder.name("b2.example.test"))
        b.record(Builder.name("b1.example.test"), type: 1, ttl: 7, data: [10, 0, 0, 1], additional: true)
        b.record(
            Builder.name("b1.example.test"), type: 28, ttl: 0x8000_0001,
            data: [0xFD, 0] + [UInt8](repeating: 0, count: 13) + [1], additional: true)
        let m = try DNSMessage.parse(b.bytes)
        XCTAssertEqual(m.responseCode, 0)
        XCTAssertEqual(
            m.answers,
            [
                DNSRecord(
                    name: "_http._tcp.example.test", ttl: 30,
                    data: .srv(priority: 10, weight: 5, port: 8080, target: "b1.example.test")),
                DNSRecord(
                    name: "_http._tcp.example.test", ttl: 20,
                    data: .srv(priority: 20, weight: 0, port: 8081, target: "b2.example.test")),
            ])
        XCTAssertEqual(
            m.additional,
            [
                DNSRecord(name: "b1.example.test", ttl: 7, data: .a("10.0.0.1")),
                DNSRecord(name: "b1.example.test", ttl: 0, data: .aaaa("fd00::1")),  // top bit set: read as 0
            ])
    }

    func testACNAMEChainAndUnknownTypesKeepTheirTTLs() throws {
        var b = Builder(rcode: 0, question: "www.test")
        b.record([0xC0, 12], type: 5, ttl: 60, data: Builder.name("web.test"))
        b.record(Builder.name("web.test"), type: 1, ttl: 9, data: [127, 0, 0, 2])
        b.record(Builder.name("web.test"), type: 16, ttl: 3, data: [1, 0x41])
        let m = try DNSMessage.parse(b.bytes)
        XCTAssertEqual(m.answers.map(\.data), [.cname("web.test"), .a("127.0.0.2"), .other(type: 16)])
        XCTAssertEqual(m.answers.map(\.ttl), [60, 9, 3])
        XCTAssertEqual(m.answers.compactMap(\.address), ["127.0.0.2"])
    }

    func testTheResponseCodeIsKept() throws {
        XCTAssertEqual(try DNSMessage.parse(Builder(rcode: 3, question: "gone.test").bytes).responseCode, 3)
    }

    func testBytesThatAreNotAMessageAreRefused() {
        XCTAssertThrowsError(try DNSMessage.parse([0, 1, 2]))
        var b = Builder(question: "a.test")
        b.record([0xC0, 12], type: 1, ttl: 1, data: [1, 2, 3, 4])
        XCTAssertThrowsError(try DNSMessage.parse(Array(b.bytes.dropLast(2))), "truncated record data")
        var loop = Builder(question: "a.test")
        loop.record([0xC0, UInt8(loop.bytes.count)], type: 1, ttl: 1, data: [1, 2, 3, 4])
        XCTAssertThrowsError(try DNSMessage.parse(loop.bytes), "a pointer to itself")
        var short = Builder(question: "a.test")
        short.record([0xC0, 12], type: 1, ttl: 1, data: [1, 2, 3])
        XCTAssertThrowsError(try DNSMessage.parse(short.bytes), "an A record of 3 bytes")
    }
}

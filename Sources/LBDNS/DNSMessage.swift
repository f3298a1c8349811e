#if canImport(Glibc)
    import Glibc
#endif

/// One resource record of an answer, with the data lb uses: addresses, SRV and CNAME; anything else is kept
/// only as its type, so its TTL still counts. Names are lower-case, without the final dot.
public struct DNSRecord: Equatable, Sendable {
    public enum Data: Equatable, Sendable {
        /// An IPv4 address, dotted (`10.0.0.1`).
        case a(String)
        /// An IPv6 address, in the shortest text form (`fd00::1`).
        case aaaa(String)
        case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
        case cname(String)
        case other(type: UInt16)
    }

    public var name: String
    public var ttl: UInt32
    public var data: Data

    public init(name: String, ttl: UInt32, data: Data) {
        self.name = name
        self.ttl = ttl
        self.data = data
    }

    /// The address, for an A or AAAA record.
    public var address: String? {
        switch data {
        case .a(let text), .aaaa(let text): text
        default: nil
        }
    }
}

/// Why an answer could not be read: its bytes are not a DNS message (truncated, a name pointer loop).
public struct DNSParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// A DNS answer message (RFC 1035 section 4), read without any I/O: the response code, the answer section and
/// the additional section (where a server puts the addresses of SRV targets, RFC 2782). c-ares carries the
/// queries; it has no TTL for SRV records and ignores the additional section, hence this reader.
public struct DNSMessage: Equatable, Sendable {
    public var responseCode: UInt8
    public var answers: [DNSRecord]
    public var additional: [DNSRecord]

    public init(responseCode: UInt8 = 0, answers: [DNSRecord] = [], additional: [DNSRecord] = []) {
        self.responseCode = responseCode
        self.answers = answers
        self.additional = additional
    }

    /// Reads `bytes`. Throws `DNSParseError` for anything that is not a whole, well-formed message; a record of a
    /// type lb does not use is kept as `.other`, never an error.
    public static func parse(_ bytes: [UInt8]) throws(DNSParseError) -> DNSMessage {
        var reader = Reader(bytes: bytes)
        guard bytes.count >= 12 else { throw DNSParseError("shorter than a DNS header (\(bytes.count) bytes)") }
        let flags = try reader.u16(at: 2)
        let questions = Int(try reader.u16(at: 4))
        let answerCount = Int(try reader.u16(at: 6))
        let authorityCount = Int(try reader.u16(at: 8))
        let additionalCount = Int(try reader.u16(at: 10))
        reader.offset = 12
        for _ in 0..<questions {
            _ = try reader.name()
            reader.offset += 4  // type, class
        }
        var message = DNSMessage(responseCode: UInt8(flags & 0x000F))
        for _ in 0..<answerCount { message.answers.append(try reader.record()) }
        for _ in 0..<authorityCount { _ = try reader.record() }
        for _ in 0..<additionalCount { message.additional.append(try reader.record()) }
        return message
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        func u8(at i: Int) throws(DNSParseError) -> UInt8 {
            guard i >= 0, i < bytes.count else { throw DNSParseError("truncated at byte \(i)") }
            return bytes[i]
        }

        func u16(at i: Int) throws(DNSParseError) -> UInt16 {
            UInt16(try u8(at: i)) << 8 | UInt16(try u8(at: i + 1))
        }

        func u32(at i: Int) throws(DNSParseError) -> UInt32 {
            UInt32(try u16(at: i)) << 16 | UInt32(try u16(at: i + 2))
        }

        /// A (possibly compressed) name at `offset`, which moves past it.
        mutating func name() throws(DNSParseError) -> String {
            let (text, end) = try Self.name(in: self, at: offset)
            offset = end
            return text
        }

        /// The name at `start` and the offset just past it in the record (compression pointers are followed,
        /// at most 64 of them: more means a loop).
        static func name(in reader: Reader, at start: Int) throws(DNSParseError) -> (String, Int) {
            var labels: [String] = []
            var i = start
            var end: Int?
            var jumps = 0
            var length = 0
            while true {
                let size = try reader.u8(at: i)
                if size == 0 {
                    if end == nil { end = i + 1 }
                    break
                }
                if size & 0xC0 == 0xC0 {
                    let target = Int(try reader.u16(at: i) & 0x3FFF)
                    if end == nil { end = i + 2 }
                    jumps += 1
                    guard jumps <= 64 else { throw DNSParseError("a name's compression pointers loop") }
                    i = target
                    continue
                }
                guard size & 0xC0 == 0 else { throw DNSParseError("unknown label type at byte \(i)") }
                let count = Int(size)
                guard i + 1 + count <= reader.bytes.count else { throw DNSParseError("truncated name at byte \(i)") }
                length += count + 1
                guard length <= 255 else { throw DNSParseError("a name longer than 255 bytes") }
                labels.append(String(decoding: reader.bytes[(i + 1)..<(i + 1 + count)], as: UTF8.self).lowercased())
                i += 1 + count
            }
            return (labels.joined(separator: "."), end!)
        }

        mutating func record() throws(DNSParseError) -> DNSRecord {
            let owner = try name()
            let type = try u16(at: offset)
            let ttl = try u32(at: offset + 4)
            let length = Int(try u16(at: offset + 8))
            let start = offset + 10
            guard start + length <= bytes.count else { throw DNSParseError("truncated record data for \(owner)") }
            offset = start + length
            let data: DNSRecord.Data
            switch type {
            case 1:
                guard length == 4 else { throw DNSParseError("an A record of \(length) bytes for \(owner)") }
                data = .a(Self.text(bytes[start..<start + 4], family: AF_INET))
            case 28:
                guard length == 16 else { throw DNSParseError("an AAAA record of \(length) bytes for \(owner)") }
                data = .aaaa(Self.text(bytes[start..<start + 16], family: AF_INET6))
            case 5:
                data = .cname(try Self.name(in: self, at: start).0)
            case 33:
                guard length >= 7 else { throw DNSParseError("an SRV record of \(length) bytes for \(owner)") }
                let (target, end) = try Self.name(in: self, at: start + 6)
                guard end <= start + length else { throw DNSParseError("an SRV target overruns its record") }
                data = .srv(
                    priority: try u16(at: start), weight: try u16(at: start + 2), port: try u16(at: start + 4),
                    target: target)
            default:
                data = .other(type: type)
            }
            // RFC 2181 section 8: a TTL with the top bit set is to be read as 0.
            return DNSRecord(name: owner, ttl: ttl & 0x8000_0000 != 0 ? 0 : ttl, data: data)
        }

        static func text(_ raw: ArraySlice<UInt8>, family: Int32) -> String {
            var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let ok = Array(raw).withUnsafeBytes { src in
                inet_ntop(family, src.baseAddress, &out, socklen_t(out.count)) != nil
            }
            return ok ? String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        }
    }
}

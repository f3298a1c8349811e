/// A request field only the proxy may set, such as the subject of a verified client certificate: every field of
/// this name the client sent is left out of the forwarded request (names compare case-insensitively; the value
/// does not matter), and the proxy's own line, when it has one, is added. A backend can then trust the field
/// because no client can forge it.
///
/// Built once per listener (`init?(name:)`) and once per connection (`with(value:)`); `HeadWriter.writeRequest`
/// uses it without allocating. Trailer fields are never forwarded, so a client cannot smuggle it there either.
public struct OwnedRequestField: Sendable, Equatable {
    /// The name as configured, for the line the proxy writes.
    public let name: String
    /// The name in lowercase ASCII, for matching the client's fields.
    let lowercaseName: [UInt8]
    /// "Name: value\r\n", or empty when the proxy adds nothing (the client's fields are dropped all the same).
    public let line: [UInt8]

    /// Nil when `name` cannot be owned (see `problem(withName:)`).
    public init?(name: String) {
        guard Self.problem(withName: name) == nil else { return nil }
        self.name = name
        lowercaseName = name.utf8.map(HTTPSyntax.lower)
        line = []
    }

    private init(name: String, lowercaseName: [UInt8], line: [UInt8]) {
        self.name = name
        self.lowercaseName = lowercaseName
        self.line = line
    }

    /// The same field with the line `Name: value`. Bytes of `value` that may not appear in a field value, and
    /// any outside printable ASCII (CR, LF, NUL and other controls, DEL, bytes above 0x7F), are written as `\XX`
    /// (uppercase hex, the escape RFC 4514 uses in distinguished names), so the value can never end the line or
    /// the head early. Allocates the line: call once per connection, not per request.
    public func with(value: some Sequence<UInt8>) -> OwnedRequestField {
        var line = Array(name.utf8)
        line.append(ASCII.colon)
        line.append(ASCII.sp)
        for byte in value {
            if byte >= 0x20 && byte < 0x7F {
                line.append(byte)
            } else {
                line.append(ASCII.backslash)
                line.append(Self.upperHex(byte >> 4))
                line.append(Self.upperHex(byte & 0xF))
            }
        }
        line.append(ASCII.cr)
        line.append(ASCII.lf)
        return OwnedRequestField(name: name, lowercaseName: lowercaseName, line: line)
    }

    /// The same field with no line: the client's fields are dropped and nothing is added.
    public var withoutValue: OwnedRequestField {
        OwnedRequestField(name: name, lowercaseName: lowercaseName, line: [])
    }

    /// Why `name` cannot be a field the proxy owns, as a sentence for a configuration message; nil when it can.
    /// It must be a token (RFC 9110 section 5.1) and not a field the proxy acts on itself: routing and framing
    /// (Host, Content-Length, Transfer-Encoding), hop-by-hop (Connection, Keep-Alive, TE, Upgrade, ...), or
    /// one it writes or merges (X-Forwarded-*, Forwarded, X-Request-ID, Cookie, Expect, Trailer).
    public static func problem(withName name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "must not be empty" }
        if !bytes.allSatisfy(HTTPSyntax.isTchar) {
            return "\"\(name)\" is not an HTTP field name (letters, digits and !#$%&'*+-.^_`|~ only)"
        }
        let known = bytes.withUnsafeBufferPointer { KnownHeader.lookup($0, 0..<$0.count) }
        if known != .other {
            return "\"\(name)\" is a field lb handles itself (routing, framing, hop-by-hop or forwarding); "
                + "choose another name, e.g. X-Client-Subject"
        }
        return nil
    }

    /// Whether the field at `range` of `p` has this name, in any case.
    @inline(__always)
    func matches(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        guard range.count == lowercaseName.count else { return false }
        return lowercaseName.withUnsafeBufferPointer { lowered in
            var i = 0
            for j in range {
                if HTTPSyntax.lower(p[j]) != lowered[i] { return false }
                i += 1
            }
            return true
        }
    }

    private static func upperHex(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x41 + v - 10 }
}

/// Header fields the proxy acts on, recognised once while parsing so nobody compares names again.
public enum KnownHeader: UInt8, Sendable {
    case other, host, contentLength, transferEncoding, connection, keepAlive, proxyConnection, te, upgrade, expect,
        trailer, xForwardedFor, xForwardedProto, xForwardedHost, forwarded, xRequestID, cookie

    /// Lowercase names; index = rawValue.
    static let names: [StaticString] = [
        "", "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
        "upgrade", "expect", "trailer", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
        "x-request-id", "cookie",
    ]

    /// One candidate per (length, lowercased first byte), each pair unique among `names`, then one compare:
    /// every field of every head passes through here, and most are not known headers.
    static func lookup(_ p: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> KnownHeader {
        let n = name.count
        guard n >= 2 && n <= 17 else { return .other }
        let candidate: KnownHeader
        switch (n, HTTPSyntax.lower(p[name.lowerBound])) {
        case (2, 0x74): candidate = .te  // t
        case (4, 0x68): candidate = .host  // h
        case (6, 0x63): candidate = .cookie  // c
        case (6, 0x65): candidate = .expect  // e
        case (7, 0x74): candidate = .trailer  // t
        case (7, 0x75): candidate = .upgrade  // u
        case (9, 0x66): candidate = .forwarded  // f
        case (10, 0x63): candidate = .connection  // c
        case (10, 0x6B): candidate = .keepAlive  // k
        case (12, 0x78): candidate = .xRequestID  // x
        case (14, 0x63): candidate = .contentLength  // c
        case (15, 0x78): candidate = .xForwardedFor  // x
        case (16, 0x70): candidate = .proxyConnection  // p
        case (16, 0x78): candidate = .xForwardedHost  // x
        case (17, 0x74): candidate = .transferEncoding  // t
        case (17, 0x78): candidate = .xForwardedProto  // x
        default: return .other
        }
        return HTTPSyntax.equalsLowercase(p, name, names[Int(candidate.rawValue)]) ? candidate : .other
    }

    /// RFC 9110 §7.6.1: always hop-by-hop, whatever Connection says.
    var isStandardHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .transferEncoding, .upgrade: return true
        default: return false
        }
    }
}

/// One field line. Ranges index into `HTTPHead.bytes`.
public struct HTTPHeaderField: Sendable, Equatable {
    public var name: Range<Int>
    /// The field value without leading and trailing OWS.
    public var value: Range<Int>
    public var known: KnownHeader
    /// A standard hop-by-hop field, or one named in Connection (never Host or Content-Length: naming them in
    /// Connection must not let a client strip the routing or framing fields).
    public var isHopByHop: Bool

    public init(name: Range<Int>, value: Range<Int>, known: KnownHeader, isHopByHop: Bool) {
        self.name = name
        self.value = value
        self.known = known
        self.isHopByHop = isHopByHop
    }
}

/// A validated request or response head. All ranges index into `bytes`.
public struct HTTPHead: Sendable {
    /// Raw head bytes exactly as received, from the start line through the final CRLF CRLF (leading empty
    /// lines excluded). The parser reuses its capacity for the next message.
    public var bytes: [UInt8] = []
    /// Requests only.
    public var method: HTTPMethod = .get
    public var methodRange: Range<Int> = 0..<0
    /// The request-target, as received (may be empty: an empty path, forwarded as "/").
    public var target: Range<Int> = 0..<0
    /// Requests: the authority of an absolute-form target ("a.example:8080" in "http://a.example:8080/x"),
    /// nil for the other forms. The writer forwards such a request in origin-form.
    public var targetAuthority: Range<Int>? = nil
    /// 0 or 1. Minor versions above 1 are treated as 1.1 (RFC 9110 §2.5) and reported as 1.
    public var versionMinor: Int = 1
    /// Responses only.
    public var status: Int = 0
    /// Responses only; may be empty.
    public var reason: Range<Int> = 0..<0
    public var fields: [HTTPHeaderField] = []
    public var framing: HTTPFraming = .none
    /// Version default (1.1 on, 1.0 off) adjusted by Connection: close / keep-alive. Off for close-delimited
    /// responses.
    public var keepAlive: Bool = true
    /// Request: Connection lists "upgrade" and an Upgrade field is present. Response: status 101.
    public var isUpgrade: Bool = false
    /// HTTP/1.1 request with `Expect: 100-continue`.
    public var expectContinue: Bool = false
    /// Requests: the host the request is for, which we route on and forward as Host: the authority of an
    /// absolute-form target (RFC 9112 §3.2.2: it replaces the Host field), else the value of the single Host
    /// field; nil for an HTTP/1.0 request with neither.
    public var host: Range<Int>? = nil

    public init() {}

    /// The value of the first field with that name.
    @inlinable
    public func value(_ known: KnownHeader) -> Range<Int>? {
        for f in fields where f.known == known { return f.value }
        return nil
    }

    /// The value of the first field named `name` (ASCII case-insensitive), for names `KnownHeader` does not
    /// cover (`routing.key: header:NAME`, `Authorization` on the admin API). No allocation.
    @inlinable
    public func value<Name: Collection<UInt8>>(named name: Name) -> Range<Int>? {
        for f in fields where f.name.count == name.count {
            var i = f.name.lowerBound
            var same = true
            for c in name {
                if HTTPSyntax.lower(bytes[i]) != HTTPSyntax.lower(c) {
                    same = false
                    break
                }
                i += 1
            }
            if same { return f.value }
        }
        return nil
    }

    /// The bytes of `range` as a String (allocates: for logs and tests, not for the data path).
    public func string(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }
}

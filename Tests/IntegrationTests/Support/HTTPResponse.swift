/// One HTTP/1.1 response as `RawHTTPConnection` read it off the wire.
struct HTTPResponse: Sendable {
    /// e.g. `HTTP/1.1`.
    var version: String
    var status: Int
    var reason: String
    /// In wire order, names as sent (use `header(_:)` for case-insensitive lookup).
    var headers: [(String, String)]
    /// The decoded body (chunked framing removed).
    var body: [UInt8]
    /// Trailer fields of a chunked body, if any.
    var trailers: [(String, String)] = []
    /// Exactly the bytes this response occupied on the connection, head and framed body.
    var raw: [UInt8]

    var bodyString: String { String(decoding: body, as: UTF8.self) }

    /// True for 1xx responses other than 101 (which ends HTTP on the connection).
    var isInterim: Bool { (100..<200).contains(status) && status != 101 }

    /// The first value of the field `name`, compared case-insensitively; `nil` if absent.
    func header(_ name: String) -> String? { HTTPWire.values(of: name, in: headers).first }

    /// Every value of the field `name` in wire order (repeated fields, e.g. two `Content-Length`s, stay separate).
    func headerValues(_ name: String) -> [String] { HTTPWire.values(of: name, in: headers) }
}

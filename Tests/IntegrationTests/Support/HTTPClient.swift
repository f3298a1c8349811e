import Foundation

/// One-shot requests for tests that only care about the answer, not the wire: a fresh connection per call, sent with
/// `Connection: close`, closed afterwards.
enum HTTPClient {
    /// `GET path` to 127.0.0.1:`port`. `Host` defaults to `127.0.0.1:port` unless given in `headers`.
    static func get(port: Int, path: String, headers: [(String, String)] = [], timeout: TimeInterval = 5) throws
        -> HTTPResponse
    {
        try request(port: port, method: "GET", path: path, headers: headers, timeout: timeout)
    }

    /// Any method; a non-nil `body` is sent with a `Content-Length`.
    static func request(
        port: Int, method: String, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: TimeInterval = 5
    ) throws -> HTTPResponse {
        var head = "\(method) \(path) HTTP/1.1\r\n"
        if !headers.contains(where: { $0.0.caseInsensitiveCompare("Host") == .orderedSame }) {
            head += "Host: 127.0.0.1:\(port)\r\n"
        }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "Connection: close\r\n\r\n"
        let connection = try RawHTTPConnection(port: port, timeout: timeout)
        defer { connection.close() }
        try connection.send(Array(head.utf8) + (body ?? []))
        return try connection.readResponse(headRequest: method == "HEAD")
    }
}

// Vocabulary shared by the sans-I/O HTTP/1.1 parser and the head writer.

/// Explicit bounds on what the parser accepts. Every limit maps to a status in `HTTPParseError.status`.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line (status line for responses), CRLF excluded. Longer → 414 (responses: bad response).
    /// Detected as soon as that many bytes arrive without a CRLF.
    public var maxRequestLine: Int
    /// Whole head incl. start line and the final CRLF CRLF; chunked trailers count too. Larger → 431.
    public var maxHeaderBytes: Int
    /// Field lines in the head (trailer fields count too). More → 431.
    public var maxHeaderCount: Int
    /// Request body bytes (Content-Length, or the sum of chunk sizes). More → 413. nil = unbounded.
    public var maxBodyBytes: Int?

    public init(
        maxRequestLine: Int = 8192, maxHeaderBytes: Int = 65536, maxHeaderCount: Int = 100, maxBodyBytes: Int? = nil
    ) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

public enum HTTPMessageKind: Sendable { case request, response }

/// Request methods. Methods are case-sensitive (RFC 9110 §9.1): "get" is a valid token that maps to `.other`.
public enum HTTPMethod: UInt8, Sendable { case get, head, post, put, delete, options, patch, trace, connect, other }

/// How the message body is delimited (RFC 9112 §6.3).
public enum HTTPFraming: Equatable, Sendable {
    /// No body (requests without CL/TE; HEAD, 1xx, 204, 304 responses; 101 and CONNECT 2xx).
    case none
    case contentLength(UInt64)
    /// The final transfer coding is chunked (possibly after content codings the backend decodes).
    case chunked
    /// Responses only: the body runs until the peer closes (`HTTPParser.finish()`); never keep-alive.
    case closeDelimited
}

/// What `HTTPParser.next` produced.
public enum HTTPEvent: Equatable, Sendable {
    /// Everything from `pos` was consumed; feed more bytes (or call `finish()` on EOF).
    case needMore
    /// A complete, validated head is in `HTTPParser.head`.
    case head
    /// DATA bytes at this range of the caller's input buffer (chunk framing stripped). Zero-copy.
    case body(Range<Int>)
    /// The message is complete; the parser is ready for the next one.
    case end
    /// The message is malformed; the parser stays in this state. Close the connection after answering.
    case error(HTTPParseError)
}

/// Why a message was rejected. One case per rule so tests and logs can tell them apart; `status` is the only
/// place that maps a defect to a status code.
///
/// `status` is what the proxy answers a client whose *request* had this defect. For a *response* every
/// case means "bad upstream response": the proxy answers 502 and drops the upstream connection.
public enum HTTPParseError: Error, Equatable, Sendable {
    // Start line.
    case tooManyLeadingEmptyLines  // more CRLFs before the request line than we ignore (RFC 9112 §2.2)
    case invalidRequestLine        // not `method SP target SP version`
    case invalidMethod             // method is not a token
    case invalidTarget             // CTL, SP or DEL, an invalid authority, or the wrong form for the method
    case missingVersion            // HTTP/0.9 style request line
    case invalidVersion            // not exactly "HTTP/" DIGIT "." DIGIT
    case unsupportedVersion        // HTTP/0.x, HTTP/2 and later
    case invalidStatusLine         // responses: not `HTTP/1.x SP 3DIGIT [SP reason]`
    case requestLineTooLong        // 414
    case statusLineTooLong         // responses

    // Line structure and field syntax.
    case bareLF                    // LF not preceded by CR (we require CRLF everywhere)
    case bareCR                    // CR not followed by LF
    case obsFold                   // a line starting with SP/HTAB (RFC 9112 §5.2, also right after the start line)
    case whitespaceBeforeColon     // RFC 9112 §5.1: MUST reject
    case invalidFieldName          // non-tchar in a field name, or no colon
    case emptyFieldName
    case invalidFieldValue         // NUL, CTL (except HTAB) or DEL in a value
    case headerTooLarge            // 431
    case tooManyHeaders            // 431

    // Semantics.
    case missingHost
    case multipleHost
    case invalidHost
    case invalidConnection         // a Connection list element that is not a token
    case bothContentLengthAndTransferEncoding
    case multipleContentLength     // several Content-Length fields, even with equal values
    case invalidContentLength      // not 1*DIGIT (lists like "42, 42" included) or above Int64.max
    case invalidTransferEncoding   // an element that is not token *(; parameter) (quotes, CTLs, obs-text ...)
    case transferEncodingNotChunked // the final coding is not chunked: the length cannot be determined
    case chunkedAppliedTwice       // "chunked, chunked" (RFC 9112 §7: MUST NOT apply chunked more than once)
    case unsupportedTransferCoding // a coding before the final chunked that we do not know ("foo, chunked") → 501
    case underscoreFramingHeader   // Content_Length / Transfer_Encoding: read as framing by CGI-style backends
    case transferEncodingInHTTP10  // RFC 9112 §6.1: framing is faulty
    case bodyTooLarge              // 413

    // Chunked body.
    case invalidChunkSize          // not 1*HEXDIG, or whitespace not followed by ';'
    case chunkSizeOverflow         // above Int64.max
    case invalidChunkExtension
    case chunkLineTooLong
    case missingChunkCRLF          // chunk data not followed by CRLF

    /// The peer closed in the middle of a head or of a Content-Length/chunked body.
    case truncated

    /// The status the proxy answers the client with when its request has this defect.
    public var status: Int {
        switch self {
        case .requestLineTooLong: return 414
        case .headerTooLarge, .tooManyHeaders: return 431
        case .bodyTooLarge: return 413
        case .unsupportedTransferCoding: return 501
        case .unsupportedVersion: return 505
        case .invalidStatusLine, .statusLineTooLong: return 502  // only ever produced for responses
        default: return 400
        }
    }

    /// Short human-readable reason for logs and error bodies. No allocation.
    public var reason: StaticString {
        switch self {
        case .tooManyLeadingEmptyLines: return "too many empty lines before the request line"
        case .invalidRequestLine: return "malformed request line"
        case .invalidMethod: return "invalid method"
        case .invalidTarget: return "invalid request target"
        case .missingVersion: return "HTTP/0.9 requests are not supported"
        case .invalidVersion: return "malformed HTTP version"
        case .unsupportedVersion: return "HTTP version not supported"
        case .invalidStatusLine: return "malformed status line"
        case .requestLineTooLong: return "request line too long"
        case .statusLineTooLong: return "status line too long"
        case .bareLF: return "bare LF line terminator"
        case .bareCR: return "bare CR"
        case .obsFold: return "obsolete line folding"
        case .whitespaceBeforeColon: return "whitespace between field name and colon"
        case .invalidFieldName: return "invalid field name"
        case .emptyFieldName: return "empty field name"
        case .invalidFieldValue: return "invalid character in field value"
        case .headerTooLarge: return "header section too large"
        case .tooManyHeaders: return "too many header fields"
        case .missingHost: return "missing Host header"
        case .multipleHost: return "multiple Host headers"
        case .invalidHost: return "invalid Host header"
        case .invalidConnection: return "invalid Connection header"
        case .bothContentLengthAndTransferEncoding: return "both Content-Length and Transfer-Encoding"
        case .multipleContentLength: return "multiple Content-Length headers"
        case .invalidContentLength: return "invalid Content-Length"
        case .invalidTransferEncoding: return "invalid Transfer-Encoding"
        case .transferEncodingNotChunked: return "final transfer coding is not chunked"
        case .chunkedAppliedTwice: return "chunked transfer coding applied more than once"
        case .unsupportedTransferCoding: return "transfer coding not implemented"
        case .underscoreFramingHeader: return "framing header name with an underscore"
        case .transferEncodingInHTTP10: return "Transfer-Encoding in an HTTP/1.0 message"
        case .bodyTooLarge: return "body too large"
        case .invalidChunkSize: return "invalid chunk size"
        case .chunkSizeOverflow: return "chunk size too large"
        case .invalidChunkExtension: return "invalid chunk extension"
        case .chunkLineTooLong: return "chunk line too long"
        case .missingChunkCRLF: return "missing CRLF after chunk data"
        case .truncated: return "connection closed in the middle of a message"
        }
    }
}

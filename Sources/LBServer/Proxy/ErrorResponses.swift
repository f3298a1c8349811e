/// The responses the proxy generates itself, one place for status, reason and body (STYLE habit 11).
enum ErrorResponses {
    static func write(status: Int, close: Bool, into out: inout [UInt8]) {
        switch status {
        case 400: HeadWriter.writeSimpleResponse(status: 400, reason: "Bad Request", body: "bad request\n", close: close, into: &out)
        case 405: HeadWriter.writeSimpleResponse(status: 405, reason: "Method Not Allowed", body: "method not allowed\n", close: close, extraHeader: "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH", into: &out)
        case 408: HeadWriter.writeSimpleResponse(status: 408, reason: "Request Timeout", body: "request timeout\n", close: close, into: &out)
        case 413: HeadWriter.writeSimpleResponse(status: 413, reason: "Content Too Large", body: "request body too large\n", close: close, into: &out)
        case 414: HeadWriter.writeSimpleResponse(status: 414, reason: "URI Too Long", body: "request line too long\n", close: close, into: &out)
        case 431: HeadWriter.writeSimpleResponse(status: 431, reason: "Request Header Fields Too Large", body: "request header fields too large\n", close: close, into: &out)
        case 501: HeadWriter.writeSimpleResponse(status: 501, reason: "Not Implemented", body: "not implemented\n", close: close, into: &out)
        case 502: HeadWriter.writeSimpleResponse(status: 502, reason: "Bad Gateway", body: "bad gateway: the backend failed or sent an invalid response\n", close: close, into: &out)
        case 503: HeadWriter.writeSimpleResponse(status: 503, reason: "Service Unavailable", body: "no backend server is available\n", close: close, extraHeader: "Retry-After: 1", into: &out)
        case 504: HeadWriter.writeSimpleResponse(status: 504, reason: "Gateway Timeout", body: "gateway timeout: the backend did not answer in time\n", close: close, into: &out)
        case 505: HeadWriter.writeSimpleResponse(status: 505, reason: "HTTP Version Not Supported", body: "http version not supported\n", close: close, into: &out)
        default: HeadWriter.writeSimpleResponse(status: 500, reason: "Internal Server Error", body: "internal error\n", close: close, into: &out)
        }
    }
}

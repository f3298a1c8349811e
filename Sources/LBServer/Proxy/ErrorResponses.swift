import LBHTTP

/// The responses the proxy generates itself, one place for status, body and extra field;
/// reason phrases come from `HTTPStatus`.
enum ErrorResponses {
    static func write(status: Int, close: Bool, into out: inout [UInt8]) {
        let code = body(status) == nil ? 500 : status
        HeadWriter.writeSimpleResponse(
            status: code, reason: HTTPStatus.reason(code), body: body(code)!, close: close,
            extraHeader: extraHeader(code), into: &out)
    }

    /// The short text body of each status the proxy answers with; nil for any other status.
    static func body(_ status: Int) -> StaticString? {
        switch status {
        case 400: return "bad request\n"
        case 405: return "method not allowed\n"
        case 408: return "request timeout\n"
        case 413: return "request body too large\n"
        case 414: return "request line too long\n"
        case 431: return "request header fields too large\n"
        case 500: return "internal error\n"
        case 501: return "not implemented\n"
        case 502: return "bad gateway: the backend failed or sent an invalid response\n"
        case 503: return "no backend server is available\n"
        case 504: return "gateway timeout: the backend did not answer in time\n"
        case 505: return "http version not supported\n"
        default: return nil
        }
    }

    static func extraHeader(_ status: Int) -> StaticString? {
        switch status {
        case 405: return "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"
        case 503: return "Retry-After: 1"
        default: return nil
        }
    }
}

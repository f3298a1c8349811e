/// Which part of a request is hashed to pick a backend (`routing.key`, `--key`).
public enum KeySource: Hashable, Sendable, CustomStringConvertible {
    /// The path without the query (default).
    case path
    /// Path and query, as in the request target.
    case uri
    /// The Host header (authority), lowercased by the router.
    case host
    /// A request header's value; the name is stored lowercased (field names are case-insensitive, RFC 9110 5.1).
    case header(String)
    /// One cookie's value; the name is case-sensitive.
    case cookie(String)
    /// One query parameter's value; the name is case-sensitive.
    case query(String)
    /// The client's IP address (the connection peer, not X-Forwarded-For).
    case clientIP

    static let validForms = "path, uri, host, client-ip, header:NAME, cookie:NAME or query:NAME"

    /// Parses the forms listed in `validForms`. The message of the error lists them.
    public init(parsing text: String) throws(ConfigValueError) {
        switch text {
        case "path": self = .path
        case "uri": self = .uri
        case "host": self = .host
        case "client-ip": self = .clientIP
        default:
            guard let colon = text.firstIndex(of: ":") else {
                throw ConfigValueError("\(quoted(text)) is not a key source; use \(Self.validForms)")
            }
            let kind = text[..<colon]
            let name = String(text[text.index(after: colon)...])
            guard ["header", "cookie", "query"].contains(kind) else {
                throw ConfigValueError("\(quoted(text)) is not a key source; use \(Self.validForms)")
            }
            guard !name.isEmpty else {
                throw ConfigValueError("\(quoted(text)) needs a name after ':', e.g. \(kind):x-user")
            }
            switch kind {
            case "header":
                // Field names are tokens (RFC 9110 5.6.2); anything else could never match a parsed header.
                let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                guard name.allSatisfy({ tchar.contains($0) }) else {
                    throw ConfigValueError("\(quoted(name)) is not a valid header name")
                }
                self = .header(name.lowercased())
            case "cookie": self = .cookie(name)
            default: self = .query(name)
            }
        }
    }

    /// The config spelling; parses back to the same value.
    public var description: String {
        switch self {
        case .path: "path"
        case .uri: "uri"
        case .host: "host"
        case .header(let name): "header:\(name)"
        case .cookie(let name): "cookie:\(name)"
        case .query(let name): "query:\(name)"
        case .clientIP: "client-ip"
        }
    }
}

/// A listen or upstream address as written in config and flags: `HOST:PORT`.
///
/// Accepted forms: `127.0.0.1:8080`, `localhost:8080`, `[::1]:8080` (IPv6 in brackets, stored without them),
/// `:8080` (all IPv4 interfaces, stored as `0.0.0.0`). The host is not resolved here; resolution and binding
/// happen at startup and fail there with their own message.
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    /// 0 asks the OS for a free port (listen addresses only; tests use it).
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`. `allowPortZero` is true for listen addresses and false for upstreams.
    /// Throws a message that names the part that is wrong, without the input itself (callers prefix it).
    public init(parsing text: String, allowPortZero: Bool = true) throws(ConfigValueError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ConfigValueError("missing ']' after IPv6 address") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ConfigValueError("missing ':PORT' after ']'") }
            portPart = rest.dropFirst()
            guard hostPart.contains(":") else {
                throw ConfigValueError("brackets are only for IPv6 addresses; write \(hostPart):PORT")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ConfigValueError("missing ':PORT'; write HOST:PORT, e.g. 127.0.0.1:8080")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw ConfigValueError("IPv6 addresses need brackets, e.g. [::1]:8080")
            }
        }
        if let bad = hostPart.first(where: { $0.isWhitespace || $0 == "/" || $0 == "[" || $0 == "]" || $0 == "@" }) {
            throw ConfigValueError("host \(quoted(String(hostPart))) contains \(quoted(String(bad)))")
        }
        guard !portPart.isEmpty else { throw ConfigValueError("port is empty") }
        guard portPart.allSatisfy(\.isASCII), portPart.allSatisfy(\.isNumber), let port = Int(portPart) else {
            throw ConfigValueError("port \(quoted(String(portPart))) is not a number")
        }
        let range = allowPortZero ? 0...65535 : 1...65535
        guard range.contains(port) else {
            throw ConfigValueError("port \(port) is out of range \(range.lowerBound)-\(range.upperBound)")
        }
        self.host = hostPart.isEmpty ? "0.0.0.0" : String(hostPart)
        self.port = port
    }

    /// `HOST:PORT`, with IPv6 hosts in brackets; parses back to the same value.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

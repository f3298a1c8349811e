/// Which certificate serves a TLS server name (SNI), from the certificates' subjectAltName DNS names.
///
/// Matching follows RFC 6125 section 6.4.3 in its common form: names compare case-insensitively; "*.b.test"
/// covers exactly one extra leftmost label ("x.b.test", not "b.test" nor "y.x.b.test"); an exact name wins over
/// a wildcard. Partial-label wildcards ("f*.b.test") are never matched. When several certificates carry the
/// same name, the first in configuration order wins. Immutable once built; read by every worker thread.
struct ServerNameTable: Sendable {
    private var exact: [String: Int] = [:]
    /// Keyed by the part after "*.": "b.test" for "*.b.test".
    private var wildcard: [String: Int] = [:]

    init(dnsNames: [[String]]) {
        for (index, names) in dnsNames.enumerated() {
            for name in names {
                let lowered = Self.normalized(name)
                if lowered.hasPrefix("*.") {
                    let parent = String(lowered.dropFirst(2))
                    if !parent.isEmpty && !parent.contains("*") && wildcard[parent] == nil { wildcard[parent] = index }
                } else if !lowered.contains("*") && !lowered.isEmpty && exact[lowered] == nil {
                    exact[lowered] = index
                }
            }
        }
    }

    /// The index of the certificate for `serverName`, or nil when none covers it.
    func certificate(for serverName: String) -> Int? {
        let name = Self.normalized(serverName)
        if let index = exact[name] { return index }
        guard let dot = name.firstIndex(of: "."), dot != name.startIndex else { return nil }
        return wildcard[String(name[name.index(after: dot)...])]
    }

    /// Lowercase ASCII, one trailing dot dropped (a fully qualified "a.test." names the same host).
    private static func normalized(_ name: String) -> String {
        let lowered = name.lowercased()
        return lowered.hasSuffix(".") ? String(lowered.dropLast()) : lowered
    }
}

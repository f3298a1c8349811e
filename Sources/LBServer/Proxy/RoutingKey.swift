import LBCore
import LBHTTP

/// Extracts the routing key of a request (config `routing.key`) and hashes it, without allocating.
/// When the chosen key is absent (no such header, cookie or query parameter, no Host), the request's path
/// is used instead and `fellBack` is incremented so stats show it.
enum RoutingKey {
    static func hash(
        _ head: HTTPHead, source: KeySource, clientAddress: UnsafeRawBufferPointer, snapshot: RoutingSnapshot,
        fellBack: inout UInt64
    ) -> UInt64 {
        head.bytes.withUnsafeBytes { raw in
            func hashRange(_ r: Range<Int>) -> UInt64 { snapshot.hashKey(UnsafeRawBufferPointer(rebasing: raw[r])) }
            let target = head.target
            // The path is scanned for only where it is used: the path key, the query key, the fallback.
            switch source {
            case .path:
                return hashRange(pathRange(raw, head))
            case .uri:
                return hashRange(target)
            case .host:
                if let h = head.host { return hashRange(h) }
            case .header(let name):
                if let r = head.value(named: name.utf8) { return hashRange(r) }
            case .cookie(let name):
                for f in head.fields where f.known == .cookie {
                    if let r = parameter(raw, in: f.value, named: name, separator: UInt8(ascii: ";")) {
                        return hashRange(r)
                    }
                }
            case .query(let name):
                let path = pathRange(raw, head)
                if path.upperBound < target.upperBound {
                    let q = (path.upperBound + 1)..<target.upperBound
                    if let r = parameter(raw, in: q, named: name, separator: UInt8(ascii: "&")) { return hashRange(r) }
                }
            case .clientIP:
                return snapshot.hashKey(clientAddress)
            }
            fellBack &+= 1
            return hashRange(pathRange(raw, head))
        }
    }

    /// The path part of the request-target: up to `?` (or `#`); in absolute form, after the authority the parser
    /// found (`HTTPHead.targetAuthority`).
    static func pathRange(_ raw: UnsafeRawBufferPointer, _ head: HTTPHead) -> Range<Int> {
        let start = head.targetAuthority?.upperBound ?? head.target.lowerBound
        var end = start
        while end < head.target.upperBound && raw[end] != UInt8(ascii: "?") && raw[end] != UInt8(ascii: "#") {
            end += 1
        }
        return start..<end
    }

    /// Finds `name=value` among `separator`-separated pairs in `range` (cookies, query strings).
    static func parameter(_ raw: UnsafeRawBufferPointer, in range: Range<Int>, named name: String,
                          separator: UInt8) -> Range<Int>? {
        var name = name
        return name.withUTF8 { n -> Range<Int>? in
            var i = range.lowerBound
            while i < range.upperBound {
                while i < range.upperBound && (raw[i] == UInt8(ascii: " ") || raw[i] == separator) { i += 1 }
                let keyStart = i
                while i < range.upperBound && raw[i] != UInt8(ascii: "=") && raw[i] != separator { i += 1 }
                let keyEnd = i
                var valueRange = i..<i
                if i < range.upperBound && raw[i] == UInt8(ascii: "=") {
                    i += 1
                    let vs = i
                    while i < range.upperBound && raw[i] != separator { i += 1 }
                    valueRange = vs..<i
                }
                if keyEnd - keyStart == n.count {
                    var same = true
                    for k in 0..<n.count where raw[keyStart + k] != n[k] { same = false; break }
                    if same && !valueRange.isEmpty { return valueRange }
                }
            }
            return nil
        }
    }
}

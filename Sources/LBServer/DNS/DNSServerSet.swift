import LBCore
import LBDNS

/// Turns DNS answers into lb servers. Pure: no I/O, no clock.
///
/// - A/AAAA: every address becomes a server `ADDR:port` of weight 1.
/// - SRV (RFC 2782): only the best (lowest) priority whose targets have addresses is used; the other priorities
///   are backups, used only when no target of a better one resolves. Each address of a target becomes a server
///   `ADDR:port` (the record's port) with the record's weight mapped to lb's (`lbWeights`).
///
/// A server's id is its address and port, so a re-resolution that returns the same address keeps the same
/// server (its `Backend`, pools and health), whatever name or record led to it.
enum DNSServerSet {
    /// One SRV record.
    struct Target: Equatable {
        var priority: UInt16
        var weight: UInt16
        var port: UInt16
        var host: String
    }

    static func servers(addresses: [String], port: Int) -> [ServerSpec] {
        var seen: Set<String> = []
        var servers: [ServerSpec] = []
        for address in addresses {
            let spec = server(address: address, port: port, weight: 1)
            if seen.insert(spec.id).inserted { servers.append(spec) }
        }
        return servers.sorted()
    }

    /// `addresses`: each target host's addresses (a target missing or empty there has none and is skipped).
    static func servers(targets: [Target], addresses: [String: [String]]) -> [ServerSpec] {
        // RFC 2782: a single record with target "." means the service is decidedly not available here.
        let usable = targets.filter { $0.host != "" && $0.host != "." && !(addresses[$0.host] ?? []).isEmpty }
        guard let best = usable.map(\.priority).min() else { return [] }
        let group = usable.filter { $0.priority == best }
        let weights = lbWeights(group.map(\.weight))
        var byID: [String: ServerSpec] = [:]
        for (target, weight) in zip(group, weights) {
            for address in addresses[target.host] ?? [] {
                let spec = server(address: address, port: Int(target.port), weight: weight)
                // Two records leading to the same address and port are one server carrying both shares.
                if var known = byID[spec.id] {
                    known.weight = min(ConfigLoader.weightRange.upperBound, known.weight + weight)
                    byID[spec.id] = known
                } else {
                    byID[spec.id] = spec
                }
            }
        }
        return byID.values.sorted()
    }

    /// SRV weights (0-65535) to lb weights (1-1000), keeping their proportions: unchanged while the largest is
    /// at most lb's maximum, scaled down to it otherwise. SRV weight 0 ("very small chance", RFC 2782) and any
    /// weight that scales below 1 become 1, lb's smallest weight that still takes traffic (lb's 0 means
    /// draining).
    static func lbWeights(_ srv: [UInt16]) -> [Int] {
        let limit = ConfigLoader.weightRange.upperBound
        let largest = Int(srv.max() ?? 0)
        return srv.map { w in
            let scaled = largest <= limit ? Int(w) : Int((Double(w) * Double(limit) / Double(largest)).rounded())
            return max(1, min(limit, scaled))
        }
    }

    static func server(address: String, port: Int, weight: Int) -> ServerSpec {
        ServerSpec(id: HostPort(host: address, port: port).description, host: address, port: port, weight: weight)
    }
}

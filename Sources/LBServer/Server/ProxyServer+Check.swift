import LBCore
import LBUV

extension ProxyServer {
    /// What `--check-config` checks beyond the file itself: every server address resolves and the routing
    /// table builds (point caps, table sizes). Returns every problem found; empty means valid.
    public static func deepCheck(_ config: LBConfig) -> [String] {
        var problems: [String] = []
        for (i, s) in config.servers.enumerated() {
            do {
                _ = try SocketAddress.resolve(host: s.host, port: s.port)
            } catch {
                problems.append("servers[\(i)].host: \(error)")
            }
        }
        do {
            _ = try RoutingSnapshot(servers: config.servers, config: config.routing)
        } catch {
            problems.append("routing: \(error)")
        }
        for (name, address) in [("listen", config.listen), ("admin.listen", config.admin.listen)] {
            do {
                _ = try SocketAddress.resolve(host: address.host, port: address.port)
            } catch {
                problems.append("\(name): \(error)")
            }
        }
        return problems
    }
}

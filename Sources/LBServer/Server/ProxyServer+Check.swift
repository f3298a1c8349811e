import LBCore
import LBUV

extension ProxyServer {
    /// What `--check-config` checks beyond the file itself: every server address resolves, the routing table
    /// builds (point caps, table sizes), every TLS listener's certificates load, and so do the CA files and
    /// client certificates of TLS to servers. Returns every problem
    /// found; empty means valid.
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
        var addresses = [("admin.listen", config.admin.listen)]
        if config.listeners.isEmpty {
            addresses.insert(("listen", config.listen), at: 0)
        } else {
            for (i, l) in config.listeners.enumerated() { addresses.append(("listeners[\(i)].address", l.address)) }
        }
        for (name, address) in addresses {
            do {
                _ = try SocketAddress.resolve(host: address.host, port: address.port)
            } catch {
                problems.append("\(name): \(error)")
            }
        }
        // The certificates load exactly as at start: readable, key matching, within their validity.
        // (--tls-cert/--tls-key arrive here as listeners[0].)
        for (i, l) in config.listeners.enumerated() {
            guard let tls = l.tls else { continue }
            do {
                _ = try makeTLSContext(tls)
            } catch {
                problems.append("listeners[\(i)].tls: \(error)")
            }
        }
        // TLS to servers: the CA file and client certificate load as they will at start.
        var contexts = TLSClientContexts(previous: nil)
        var reported = Set<String>()
        for (i, s) in config.servers.enumerated() {
            do {
                _ = try contexts.backendTLS(config.upstreamTLS(forServer: s.id), server: s)
            } catch {
                // A bad upstream_tls file fails for every server: name it once.
                let text = error.description
                if reported.insert(text).inserted { problems.append("servers[\(i)].tls: \(text)") }
            }
        }
        // A start refuses a state file whose directory is missing, so this is a problem; a damaged state file
        // only makes a start use the config alone, so that is `stateFileWarning`.
        if let path = config.serverSource.stateFile, let problem = StateFile.directoryProblem(path) {
            problems.append("server_source.state_file \(path): \(problem)")
        }
        return problems
    }

    /// What `--check-config` prints about the state file when a start would reject it (and use the config's
    /// servers alone); nil when there is none, no file yet, or it reads. Only the file itself is checked, not
    /// whether its changes fit this config.
    public static func stateFileWarning(_ config: LBConfig) -> String? {
        guard let path = config.serverSource.stateFile, case .rejected(let problem) = StateFile.read(path: path) else {
            return nil
        }
        return "state file \(path) would be rejected and the config's servers used alone: \(problem)"
    }
}

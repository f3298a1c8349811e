extension ProxyServer {
    /// The config sections a reload does not apply (they are read once at start; TLS certificates and their
    /// settings are reloaded, the set of listeners is not), as config keys, for the one
    /// warning a reload logs when the file changed any of them: an operator's edit is never dropped silently.
    static func restartOnlyChanges(from old: LBConfig, to new: LBConfig) -> [String] {
        var keys: [String] = []
        // The sockets: where they listen and which speak TLS. `listen` is the one-listener form of the same.
        let (was, now) = (old.effectiveListeners, new.effectiveListeners)
        if was.map(\.address) != now.map(\.address) || was.map({ $0.tls == nil }) != now.map({ $0.tls == nil }) {
            keys.append(old.listeners.isEmpty && new.listeners.isEmpty ? "listen" : "listeners")
        }
        if new.admin.listen != old.admin.listen { keys.append("admin.listen") }
        if new.admin.token != old.admin.token { keys.append("admin.token") }
        if new.workers != old.workers { keys.append("workers") }
        if new.routingKey != old.routingKey { keys.append("routing.key") }
        if new.retries != old.retries { keys.append("retries") }
        if new.timeouts != old.timeouts { keys.append("timeouts") }
        if new.limits != old.limits { keys.append("limits") }
        if new.forwarding != old.forwarding { keys.append("forwarding") }
        if new.accessLog != old.accessLog { keys.append("access_log") }
        if new.stats != old.stats { keys.append("stats") }
        if new.busyPolls != old.busyPolls { keys.append("busy_polls") }
        if new.coalesceMicros != old.coalesceMicros { keys.append("coalesce_us") }
        return keys
    }
}

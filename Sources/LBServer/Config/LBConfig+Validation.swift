import LBCore

extension LBConfig {
    /// Rules that involve more than one key. Checked after a file is read and again after flags are applied,
    /// since either can change the values involved.
    func crossFieldProblems() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        // Maglev fills a table of M slots with N backends; with M ≤ N some backend gets no slot at all.
        if routing.algorithm == .maglev && routing.maglevTableSize <= servers.count {
            let suggestion = Primes.next(after: max(100 * servers.count, 1)).map(String.init) ?? "none"
            problems.append(
                ConfigProblem(
                    "routing.maglev_table_size",
                    "\(routing.maglevTableSize) must be larger than the number of servers (\(servers.count)); "
                        + "use a prime of at least 100 × servers, e.g. \(suggestion)"
                ))
        }
        for (i, l) in effectiveListeners.enumerated() where admin.listen == l.address && l.address.port != 0 {
            let name = listeners.isEmpty ? "listen" : "listeners[\(i)].address"
            problems.append(ConfigProblem("admin.listen", "\(admin.listen) is the same address as \(name)"))
        }
        if serverSource.type == .etcd && serverSource.stateFile != nil {
            problems.append(ConfigProblem(
                "server_source.state_file", "only with \"type\": \"static\"; etcd keeps the servers itself"))
        }
        if serverSource.type == .dns && serverSource.stateFile != nil {
            problems.append(ConfigProblem(
                "server_source.state_file", "only with \"type\": \"static\"; with dns the records are the servers"))
        }
        return problems
    }
}

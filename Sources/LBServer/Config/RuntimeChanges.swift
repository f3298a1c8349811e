import LBCore

/// The operator's changes to the server set made at run time (the admin API), as the difference between the
/// servers the config gives and the servers running. What a state file holds. Pure values; any thread.
///
/// Why a difference and not the whole running set: a `SIGHUP` with an edited config must keep the operator's
/// changes *and* take the file's edits for every server the operator did not touch. The rule is that a runtime
/// change wins over the config for the server it names, until the config says the same thing:
/// - a server removed at runtime stays removed while the config lists it;
/// - a server added at runtime stays, with its address and weight, even if the config later gives that id
///   another address;
/// - a weight set at runtime stays over the config's weight for that server;
/// - a drain stays (the config cannot express one);
/// - every other server, and every setting that is not a server, comes from the config.
/// Recomputing the difference against a new config drops the changes the config now agrees with (it lists
/// the added server as it runs, no longer lists the removed one, gives the same weight), so from then on the
/// config owns that server again.
struct RuntimeChanges: Equatable, Sendable {
    /// Servers running that the config does not have, or has at another address: their whole spec, by id.
    var added: [ServerSpec] = []
    /// Ids of config servers that are not running, sorted.
    var removed: [String] = []
    /// Weights of config servers running at their configured address with another weight.
    var weights: [String: Int] = [:]
    /// Ids of drained servers (from the config or added), sorted.
    var draining: [String] = []

    var isEmpty: Bool { count == 0 }
    /// How many servers the changes name (a server both reweighted and drained counts twice).
    var count: Int { added.count + removed.count + weights.count + draining.count }

    init(added: [ServerSpec] = [], removed: [String] = [], weights: [String: Int] = [:], draining: [String] = []) {
        self.added = added.sorted()
        self.removed = removed.sorted()
        self.weights = weights
        self.draining = draining.sorted()
    }

    /// The changes that turn the servers `config` lists into `running`, with the servers in `draining` drained
    /// (ids not running are ignored).
    init(from config: [ServerSpec], to running: [ServerSpec], draining: Set<String>) {
        let configured = Dictionary(config.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let runningIDs = Set(running.map(\.id))
        var added: [ServerSpec] = []
        var weights: [String: Int] = [:]
        for spec in running {
            switch Self.origin(of: spec, config: configured) {
            case .runtime: added.append(spec)
            case .config(let weightChanged): if weightChanged { weights[spec.id] = spec.weight }
            }
        }
        self.init(
            added: added, removed: config.map(\.id).filter { !runningIDs.contains($0) }, weights: weights,
            draining: draining.filter { runningIDs.contains($0) }.sorted())
    }

    /// The servers to run and the ids to drain: `config` less `removed`, each `added` server replacing the
    /// config's server of that id or joining the list, `weights` laid over config servers. Entries that name a
    /// server the result does not have are skipped: the config dropped it since.
    func applied(to config: [ServerSpec]) -> (servers: [ServerSpec], draining: Set<String>) {
        let gone = Set(removed)
        var replacements = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var servers: [ServerSpec] = []
        for var spec in config where !gone.contains(spec.id) {
            if let replacement = replacements.removeValue(forKey: spec.id) {
                spec = replacement
            } else if let weight = weights[spec.id] {
                spec.weight = weight
            }
            servers.append(spec)
        }
        servers += added.filter { replacements[$0.id] != nil }
        let ids = Set(servers.map(\.id))
        return (servers, Set(draining.filter { ids.contains($0) }))
    }

    /// Where a running server comes from.
    enum Origin: Equatable {
        /// The config lists it at this address; `weightChanged` when its weight was set at runtime.
        case config(weightChanged: Bool)
        /// Added at runtime: the config does not list it, or lists its id at another address.
        case runtime
    }

    /// `spec`'s origin given the config's servers by id.
    static func origin(of spec: ServerSpec, config: [String: ServerSpec]) -> Origin {
        guard let configured = config[spec.id], configured.host == spec.host, configured.port == spec.port else {
            return .runtime
        }
        return .config(weightChanged: configured.weight != spec.weight)
    }
}

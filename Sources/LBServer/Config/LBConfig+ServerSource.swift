extension LBConfig {
    /// `server_source`: where the set of servers comes from, and for the config file's own servers
    /// (`type: static`, the only type so far) whether runtime changes persist in a state file.
    public struct ServerSource: Equatable, Sendable {
        /// `server_source.type`. The section is shaped so that other sources of servers can become further
        /// cases with keys of their own next to `type`.
        public enum SourceType: String, CaseIterable, Sendable {
            /// The config file's `servers` (or the `--backend` flags), changed at run time through the admin API.
            case `static`
        }

        public var type: SourceType
        /// `server_source.state_file` (or `--state-file`): the admin API's changes to the servers are written
        /// here and laid over the config's servers at start, on `SIGHUP` and in a hot upgrade's successor.
        /// nil: runtime changes last until the next reload or restart.
        public var stateFile: String?

        public init(type: SourceType = .static, stateFile: String? = nil) {
            self.type = type
            self.stateFile = stateFile
        }
    }
}

extension LBConfig.ServerSource {
    /// Why `path` cannot be a state file path, or nil when it can. Only the text is checked here; whether its
    /// directory exists is checked at start (`StateFile.checkDirectory`).
    static func problem(withStateFile path: String) -> String? {
        if path.isEmpty { return "must not be empty" }
        if path.hasSuffix("/") { return "\(quoted(path)) names a directory; give a file path inside it" }
        if path.contains("\u{0}") { return "must not contain a NUL character" }
        return nil
    }
}

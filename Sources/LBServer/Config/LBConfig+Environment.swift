extension LBConfig {
    /// The environment variable that overrides `admin.token`, so the token need not be written in a file.
    public static let adminTokenEnvironmentVariable = "LB_ADMIN_TOKEN"

    /// Returns this config with `admin.token` taken from `LB_ADMIN_TOKEN` when that variable is set and
    /// non-empty; otherwise unchanged. An empty value is ignored rather than meaning "no token", so a stray
    /// `LB_ADMIN_TOKEN=` cannot switch authentication off.
    /// Pass `ProcessInfo.processInfo.environment` in production and a literal dictionary in tests.
    public func withAdminToken(fromEnvironment environment: [String: String]) -> LBConfig {
        guard let token = environment[Self.adminTokenEnvironmentVariable], !token.isEmpty else { return self }
        var copy = self
        copy.admin.token = token
        return copy
    }
}

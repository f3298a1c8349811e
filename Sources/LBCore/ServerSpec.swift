/// A backend as configured: identity, address and weight. Identity (`id`) is what every balancing
/// algorithm keys on, never list position, so the same set in any order routes identically.
public struct ServerSpec: Hashable, Sendable, Comparable {
    /// Stable identity; defaults to `host:port`.
    public var id: String
    public var host: String
    public var port: Int
    /// Integer weight; 0 means "receives no new keys" (draining).
    public var weight: Int

    public init(id: String? = nil, host: String, port: Int, weight: Int = 1) {
        self.id = id ?? "\(host):\(port)"
        self.host = host
        self.port = port
        self.weight = weight
    }

    public static func < (a: ServerSpec, b: ServerSpec) -> Bool { a.id < b.id }
}

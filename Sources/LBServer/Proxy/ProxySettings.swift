import LBCore

/// The proxy's runtime settings, flattened from `LBConfig` (see `ProxySettings(config:)`). Durations in ms.
struct ProxySettings: Sendable {
    var limits = HTTPLimits()
    var forwarding = ForwardingOptions()
    var keySource: KeySource = .path
    var clientHeaderTimeout: UInt64 = 10_000
    var clientIdleTimeout: UInt64 = 60_000
    var upstreamConnectTimeout: UInt64 = 3_000
    var upstreamResponseTimeout: UInt64 = 30_000
    var upstreamIdleTimeout: UInt64 = 60_000
    var tunnelIdleTimeout: UInt64 = 300_000
    var maxClientConnections = 10_000
    var poolSize = 64
    var retries = 2
    /// Record latency histograms (`stats.latency`).
    var recordLatency = true
    /// Stop reading the source when the destination has more than this queued; resume below `lowWater`.
    var highWater = 256 * 1024
    var lowWater = 64 * 1024
    /// Empty non-blocking polls before a loop sleeps (`busy_polls`).
    var busyPolls = 0
}

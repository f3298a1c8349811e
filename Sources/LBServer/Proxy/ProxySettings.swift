import Foundation
import LBCore
import LBH2
import LBHTTP

/// The proxy's runtime settings, flattened from `LBConfig` once at start (`ProxySettings(config:)`); the
/// defaults live in `LBConfig` alone. Durations in ms.
struct ProxySettings: Sendable {
    var limits: HTTPLimits
    var forwarding: ForwardingOptions
    var keySource: KeySource
    /// Every connection timeout, in the shape `ConnectionTimer` takes.
    var timeouts: ConnectionTimer.Limits
    var maxClientConnections: Int
    /// `limits.max_connections_per_client`: one table shared by every worker (the settings are built once and
    /// copied to each), nil when the limit is off.
    var perClientLimit: ClientAddressLimit?
    /// Idle connections kept per backend at most (`limits.upstream_pool_size`); `Int.max` when there is no fixed
    /// cap, so the release path compares with no optional to unwrap.
    var poolSize: Int
    /// Milliseconds between two purges of the idle pools (`timeouts.upstream_pool_purge`).
    var poolPurgeMs: UInt64
    /// How long a request waits in a server's queue (`timeouts.queue`).
    var queueTimeoutMs: UInt64
    /// `limits.learn_server_limits`, and the queue this worker keeps for a server at a learnt limit: its share of
    /// `limits.max_client_connections` or of `limits.server_max_queue`, whichever is larger. Those requests would
    /// otherwise wait in the server's accept queue, which no operator sized: none is refused sooner than
    /// `timeouts.queue`.
    var learnServerLimits: Bool
    var learntLimitQueue: Int
    /// TLS accepts per loop turn and per second for this worker (the process rate divided by the workers).
    var tlsHandshakesPerTurn: Int?
    /// Plain accepts per loop turn (`limits.accepts_per_turn`); nil = no cap.
    var acceptsPerTurn: Int?
    var tlsHandshakesPerSecond: Int?
    var retries: Int
    /// Record latency histograms (`stats.latency`).
    var recordLatency: Bool
    /// Empty non-blocking polls before a loop sleeps (`busy_polls`).
    var busyPolls: Int
    /// Wake-up coalescing sleep in microseconds (`coalesce_us`); 0 = off.
    var coalesceMicros: Int
    /// HTTP/1.1 back-pressure: stop reading the source when the destination socket has more than this queued
    /// in lb; resume at `lowWater`. Bodies go to the kernel as they are read (`ByteStream.send`), so the kernel's
    /// socket buffers do the buffering and lb queues only what the kernel did not take: 0 stops reading the
    /// source as soon as the destination's socket is full and reads again once lb has passed on all it holds,
    /// so a slow reader costs one read's remainder (`UpstreamConnection.slowReaderReadBytes` after the first).
    /// Against the 64 KiB mark it replaced: the same throughput and system calls per request on loopback, and
    /// peak memory with a thousand keep-alive clients of 1 MiB responses from 82.7 to 19.8 MB (HAProxy 34).
    var highWater = 0
    var lowWater = 0
    /// The same for an HTTP/2 connection's output and each stream's buffered response: one connection
    /// multiplexes many streams, so its queue is larger.
    var h2HighWater = 256 * 1024
    var h2LowWater = 64 * 1024
    /// What HTTP/2 connections advertise and enforce (`limits.http2_max_concurrent_streams`; the head limits).
    var h2: H2Session.Settings

    init(config: LBConfig) {
        limits = HTTPLimits(
            maxRequestLine: config.limits.maxRequestLine, maxHeaderBytes: config.limits.maxHeaderBytes,
            maxHeaderCount: config.limits.maxHeaders, maxBodyBytes: config.limits.maxBodyBytes)
        forwarding = config.forwarding
        keySource = config.routingKey
        timeouts = ConnectionTimer.Limits(config.timeouts)
        // Each try waits at most the per-try timeout for its response head.
        timeouts[.upstreamResponse] = min(timeouts[.upstreamResponse], config.retries.perTryTimeoutMs)
        maxClientConnections = config.limits.maxClientConnections
        perClientLimit = config.limits.maxConnectionsPerClient.map { ClientAddressLimit(limit: $0) }
        poolSize = config.limits.upstreamPoolSize ?? .max
        poolPurgeMs = config.timeouts[.upstreamPoolPurge]
        queueTimeoutMs = config.timeouts[.queue]
        tlsHandshakesPerTurn = config.limits.tlsHandshakesPerTurn
        acceptsPerTurn = config.limits.acceptsPerTurn
        let workers = config.workers.resolved(cores: ProcessInfo.processInfo.activeProcessorCount)
        tlsHandshakesPerSecond = config.limits.tlsHandshakesPerSecond.map { max(1, ($0 + workers - 1) / workers) }
        learnServerLimits = config.limits.learnServerLimits
        learntLimitQueue =
            (max(config.limits.serverMaxQueue, config.limits.maxClientConnections) + workers - 1) / workers
        retries = config.retries.max
        recordLatency = config.stats.latency
        busyPolls = config.busyPolls
        coalesceMicros = config.coalesceMicros
        h2 = H2Session.Settings(
            maxConcurrentStreams: config.limits.http2MaxConcurrentStreams, maxHeaderListSize: config.limits.maxHeaderBytes)
    }
}

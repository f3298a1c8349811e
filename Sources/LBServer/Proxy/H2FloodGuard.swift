/// Per-connection counters against HTTP/2 floods that cost lb work and the client almost nothing
/// (CVE-2023-44487 Rapid Reset, CVE-2019-9512 ping flood, CVE-2019-9515 settings flood, CVE-2019-9518 empty
/// frames): each kind is counted in one-second windows, and a connection that exceeds a limit is told
/// ENHANCE_YOUR_CALM and closed. A pure value with the clock injected (`now` in loop milliseconds).
struct H2FloodGuard {
    enum Kind: Int, CaseIterable {
        /// RST_STREAM from the client.
        case reset
        /// DATA without payload or END_STREAM, PRIORITY, and CONTINUATION-free HEADERS that carry nothing.
        case emptyFrame
        case ping
        case settings
        /// Streams lb refused (concurrency limit, or reset streams whose backend requests are still open).
        case refusedStream

        var goawayReason: H2GoawayReason {
            switch self {
            case .reset: return .resetFlood
            case .emptyFrame: return .emptyFrameFlood
            case .ping: return .pingFlood
            case .settings: return .settingsFlood
            case .refusedStream: return .refusedStreamFlood
            }
        }
    }

    /// Most of each kind allowed in one window, by `Kind.rawValue`.
    struct Limits: Equatable {
        var perWindow: [Int] = [200, 200, 100, 100, 200]
    }

    static let windowMs: UInt64 = 1000

    let limits: Limits
    private var windowStart: UInt64 = 0
    private var counts = [Int](repeating: 0, count: Kind.allCases.count)

    init(limits: Limits = Limits()) { self.limits = limits }

    /// Counts one frame of `kind` at `now`; true when that exceeds the kind's limit in the current window.
    mutating func count(_ kind: Kind, now: UInt64) -> Bool {
        if now &- windowStart >= Self.windowMs {
            windowStart = now
            for i in counts.indices { counts[i] = 0 }
        }
        counts[kind.rawValue] += 1
        return counts[kind.rawValue] > limits.perWindow[kind.rawValue]
    }
}

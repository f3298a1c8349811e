/// How many idle keep-alive connections one worker keeps for one backend: as many as recent demand needed, with
/// the surplus closed gradually once demand falls. Pure logic, no clock and no I/O: the worker's sweep calls
/// `purge` once per purge interval (`timeouts.upstream_pool_purge`) and closes what it returns.
///
/// The rule is HAProxy's idle-connection purge (`srv_cleanup_idle_conns` in src/server.c, run every
/// `pool-purge-delay`, default 5 s):
/// - demand is the most connections in use at once during the interval just ended (`windowPeak`, raised on the
///   request path by `connectionsInUse`, reset at each purge to the number in use then);
/// - the need is the larger of that peak and a decaying estimate (`estimate`), which takes the peak whenever the
///   peak is higher and otherwise moves halfway down to it each interval, so one quiet interval does not forget a
///   burst;
/// - the surplus is every open connection (in use + idle) beyond the need, and half of it, rounded up, is closed
///   per interval (never more than are idle).
///
/// A fixed pool cap (`limits.upstream_pool_size`) closes connections at release instead; this policy only ever
/// removes idle connections, so it can never take one a request holds.
struct PoolDemand: Equatable {
    /// Most connections in use at once since the last purge.
    private(set) var windowPeak = 0
    /// Connections recent intervals needed: at least the last peak, halving towards lower peaks.
    private(set) var estimate = 0

    init(windowPeak: Int = 0, estimate: Int = 0) {
        self.windowPeak = windowPeak
        self.estimate = estimate
    }

    /// `inUse` connections are in use now (a request took one from the pool or opened one). O(1), no allocation:
    /// called once per request.
    @inline(__always)
    mutating func connectionsInUse(_ inUse: Int) {
        if inUse > windowPeak { windowPeak = inUse }
    }

    /// The need the next purge compares the open connections with.
    var need: Int { max(windowPeak, estimate) }

    /// Ends an interval with `idle` connections pooled and `inUse` in use: returns how many idle ones to close now
    /// (0...idle) and starts the next interval.
    mutating func purge(idle: Int, inUse: Int) -> Int {
        let close = Self.surplusToClose(idle: idle, inUse: inUse, need: need)
        estimate = max(windowPeak, (estimate + windowPeak) / 2)
        windowPeak = inUse
        return close
    }

    /// Half the connections beyond `need`, rounded up, and at most the `idle` ones; 0 when there is no surplus.
    static func surplusToClose(idle: Int, inUse: Int, need: Int) -> Int {
        let surplus = idle + inUse - need
        guard surplus > 0, idle > 0 else { return 0 }
        return min(idle, surplus / 2 + surplus % 2)
    }
}

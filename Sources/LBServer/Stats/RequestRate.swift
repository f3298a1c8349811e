/// Requests per second over the last ten seconds, from running totals sampled once a second.
///
/// A pure value: the control loop's 1 s timer feeds it `record(at:totals:)` with the loop clock
/// (ms) and the totals of a `StatsSnapshot`; a reader asks for `rate(now:current:)` with the totals it just
/// collected, so the newest point is always fresh and the window is "now minus the oldest kept sample" (at most
/// `slots` seconds; less just after start). Counters only grow; a total that went down (a server removed and
/// re-added under the same id) yields 0, never a negative rate.
struct RequestRate {
    /// Running totals at one instant: all requests, and per server id its requests and 5xx responses.
    struct Totals {
        var requests: UInt64 = 0
        var servers: [String: (requests: UInt64, errors: UInt64)] = [:]

        init(requests: UInt64 = 0, servers: [String: (requests: UInt64, errors: UInt64)] = [:]) {
            self.requests = requests
            self.servers = servers
        }

        init(_ snapshot: StatsSnapshot) {
            requests = snapshot.workers.requests
            for (id, b) in snapshot.backends {
                servers[id] = (b.counters.requests, b.counters.responses.counts.4)
            }
        }

        /// Sums `other` into these totals (one worker's part, or a finished worker's).
        mutating func add(_ other: Totals) {
            requests &+= other.requests
            for (id, c) in other.servers {
                let mine = servers[id] ?? (0, 0)
                servers[id] = (mine.requests &+ c.requests, mine.errors &+ c.errors)
            }
        }
    }

    /// Per-second rates over the window.
    struct Rates {
        var requests: Double = 0
        var servers: [String: (requests: Double, errors: Double)] = [:]
        /// Seconds the rates are averaged over (0 before the first sample).
        var window: Double = 0
    }

    let slots: Int
    private var samples: [(at: UInt64, totals: Totals)] = []
    private var next = 0

    init(slots: Int = 10) { self.slots = max(1, slots) }

    /// Keeps `totals` taken at `at` (ms), replacing the oldest sample once the ring is full.
    mutating func record(at: UInt64, totals: Totals) {
        if samples.count < slots {
            samples.append((at, totals))
        } else {
            samples[next] = (at, totals)
        }
        next = (next + 1) % slots
    }

    /// The totals gained a base that moved from `old` to `new` (a hot upgrade's successor adding the previous
    /// process's counters to its own): every kept sample moves by the same difference, so the jump is not read
    /// as traffic. Wrapping arithmetic: a difference that is negative for a server cancels out the same way.
    mutating func rebase(from old: Totals, to new: Totals) {
        for i in samples.indices {
            samples[i].totals.requests = samples[i].totals.requests &+ (new.requests &- old.requests)
            for id in Set(old.servers.keys).union(new.servers.keys) {
                let was = old.servers[id] ?? (0, 0)
                let now = new.servers[id] ?? (0, 0)
                let sample = samples[i].totals.servers[id] ?? (0, 0)
                samples[i].totals.servers[id] = (
                    sample.requests &+ (now.requests &- was.requests), sample.errors &+ (now.errors &- was.errors)
                )
            }
        }
    }

    /// The oldest sample still kept: the baseline for the window.
    private var oldest: (at: UInt64, totals: Totals)? {
        samples.count < slots ? samples.first : samples[next]
    }

    /// Rates between the oldest kept sample and `current` taken at `now` (ms). All zero when there is no sample
    /// yet or no time has passed.
    func rate(now: UInt64, current: Totals) -> Rates {
        guard let base = oldest, now > base.at else { return Rates() }
        let seconds = Double(now - base.at) / 1000
        func perSecond(_ new: UInt64, _ old: UInt64) -> Double { new >= old ? Double(new - old) / seconds : 0 }
        var rates = Rates(requests: perSecond(current.requests, base.totals.requests), window: seconds)
        for (id, c) in current.servers {
            let old = base.totals.servers[id] ?? (0, 0)
            rates.servers[id] = (perSecond(c.requests, old.requests), perSecond(c.errors, old.errors))
        }
        return rates
    }
}

extension ProxyServer {
    /// Copies every worker's counters on its own loop and calls `done` on the control loop with their sum.
    func collectStats(_ done: @escaping (StatsSnapshot) -> Void) {
        let total = StatsSnapshot()
        let live = threads.filter { !$0.isDone }
        if live.isEmpty {
            done(total)
            return
        }
        let box = CollectBox(total: total, remaining: live.count, done: done)
        for t in live {
            let posted = t.post { [inbox = controlInbox] w in
                let part = UncheckedSendable(w.snapshot())
                inbox.post { box.add(part.value) }
            }
            // A worker that has already closed counts nothing, but must not keep the answer waiting.
            if !posted { box.add(StatsSnapshot()) }
        }
    }
}

/// Accumulates worker snapshots on the control loop.
private final class CollectBox: @unchecked Sendable {
    var total: StatsSnapshot
    var remaining: Int
    let done: (StatsSnapshot) -> Void
    init(total: StatsSnapshot, remaining: Int, done: @escaping (StatsSnapshot) -> Void) {
        self.total = total
        self.remaining = remaining
        self.done = done
    }
    func add(_ part: StatsSnapshot) {
        total.merge(part)
        remaining -= 1
        if remaining == 0 { done(total) }
    }
}

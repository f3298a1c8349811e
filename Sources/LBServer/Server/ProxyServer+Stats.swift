import LBUV

extension ProxyServer {
    /// Copies every worker's counters on its own loop and calls `done` on the control loop with their sum, plus
    /// the counters carried over from the process this one replaced (`carried`, empty without a hot upgrade).
    func collectStats(_ done: @escaping (StatsSnapshot) -> Void) {
        var total = StatsSnapshot()
        total.merge(carried.snapshot)
        // A worker whose loop has ended left its counters behind (a draining process's workers end one by one).
        for t in threads where t.isDone { total.merge(t.finalSnapshot ?? StatsSnapshot()) }
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
            // A worker that closed its inbox is ending its loop: its counters are there once it has ended.
            if !posted { addWhenDone(t, to: box) }
        }
    }

    /// Adds `t`'s final counters to `box` once its loop has ended (polled every 5 ms on the control loop; it
    /// ends within a loop turn or two of closing its inbox).
    private func addWhenDone(_ t: WorkerThread, to box: CollectBox) {
        if t.isDone { return box.add(t.finalSnapshot ?? StatsSnapshot()) }
        final class Slot { var timer: LoopTimer? }
        let slot = Slot()
        let poll = LoopTimer(loop: loop) {
            guard t.isDone else { return }
            slot.timer?.close()  // drops this closure, and with it the slot's hold on the timer
            slot.timer = nil
            box.add(t.finalSnapshot ?? StatsSnapshot())
        }
        slot.timer = poll
        poll.start(timeout: 5, repeat: 5)
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

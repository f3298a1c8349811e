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
            if !posted { whenDone(t) { box.add($0) } }
        }
    }

    /// `collectStats` for the request rate alone (`Worker.rateTotals`): no latency histogram is copied, so the
    /// per-second sampler costs the workers little however many servers there are.
    func collectRateTotals(_ done: @escaping (RequestRate.Totals) -> Void) {
        var total = RequestRate.Totals(carried.snapshot)
        for t in threads where t.isDone { total.add(RequestRate.Totals(t.finalSnapshot ?? StatsSnapshot())) }
        let live = threads.filter { !$0.isDone }
        if live.isEmpty {
            done(total)
            return
        }
        let box = RateBox(total: total, remaining: live.count, done: done)
        for t in live {
            let posted = t.post { [inbox = controlInbox] w in
                let part = UncheckedSendable(w.rateTotals())
                inbox.post { box.add(part.value) }
            }
            if !posted { whenDone(t) { box.add(RequestRate.Totals($0)) } }
        }
    }

    /// Gives `t`'s final counters to `body` once its loop has ended (polled every 5 ms on the control loop; it
    /// ends within a loop turn or two of closing its inbox).
    private func whenDone(_ t: WorkerThread, _ body: @escaping (StatsSnapshot) -> Void) {
        if t.isDone { return body(t.finalSnapshot ?? StatsSnapshot()) }
        final class Slot { var timer: LoopTimer? }
        let slot = Slot()
        let poll = LoopTimer(loop: loop) {
            guard t.isDone else { return }
            slot.timer?.close()  // drops this closure, and with it the slot's hold on the timer
            slot.timer = nil
            body(t.finalSnapshot ?? StatsSnapshot())
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

/// Accumulates the workers' rate totals on the control loop.
private final class RateBox: @unchecked Sendable {
    var total: RequestRate.Totals
    var remaining: Int
    let done: (RequestRate.Totals) -> Void
    init(total: RequestRate.Totals, remaining: Int, done: @escaping (RequestRate.Totals) -> Void) {
        self.total = total
        self.remaining = remaining
        self.done = done
    }
    func add(_ part: RequestRate.Totals) {
        total.add(part)
        remaining -= 1
        if remaining == 0 { done(total) }
    }
}

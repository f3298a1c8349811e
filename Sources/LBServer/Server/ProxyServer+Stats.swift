import LBUV

extension ProxyServer {
    /// Copies every worker's counters on its own loop and calls `done` on the control loop with their sum, plus
    /// the counters carried over from the process this one replaced (`carried`, empty without a hot upgrade).
    func collectStats(_ done: @escaping (StatsSnapshot) -> Void) {
        var initial = StatsSnapshot()
        initial.merge(carried.snapshot)
        collect(initial, part: { $0.snapshot() }, final: { $0 }, combine: { $0.merge($1) }, done: done)
    }

    /// `collectStats` for the request rate alone (`Worker.rateTotals`): no latency histogram is copied, so the
    /// per-second sampler costs the workers little however many servers there are.
    func collectRateTotals(_ done: @escaping (RequestRate.Totals) -> Void) {
        collect(
            RequestRate.Totals(carried.snapshot), part: { $0.rateTotals() }, final: { RequestRate.Totals($0) },
            combine: { $0.add($1) }, done: done)
    }

    /// Asks every live worker for its `part` (taken on its own loop) and adds the parts with `combine` to
    /// `initial` and to `final` of each ended worker's last snapshot; `done` gets the sum on the control loop once
    /// every part is in.
    private func collect<T>(
        _ initial: T, part: @escaping @Sendable (Worker) -> T, final: @escaping (StatsSnapshot) -> T,
        combine: @escaping (inout T, T) -> Void, done: @escaping (T) -> Void
    ) {
        var total = initial
        // A worker whose loop has ended left its counters behind (a draining process's workers end one by one).
        for t in threads where t.isDone { combine(&total, final(t.finalSnapshot ?? StatsSnapshot())) }
        let live = threads.filter { !$0.isDone }
        if live.isEmpty {
            done(total)
            return
        }
        let box = CollectBox(total: total, remaining: live.count, combine: combine, done: done)
        for t in live {
            let posted = t.post { [inbox = controlInbox] w in
                let value = UncheckedSendable(part(w))
                inbox.post { box.add(value.value) }
            }
            // A worker that closed its inbox is ending its loop: its counters are there once it has ended.
            if !posted { whenDone(t) { box.add(final($0)) } }
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

/// Accumulates the workers' parts on the control loop.
private final class CollectBox<T>: @unchecked Sendable {
    var total: T
    var remaining: Int
    let combine: (inout T, T) -> Void
    let done: (T) -> Void
    init(total: T, remaining: Int, combine: @escaping (inout T, T) -> Void, done: @escaping (T) -> Void) {
        self.total = total
        self.remaining = remaining
        self.combine = combine
        self.done = done
    }
    func add(_ part: T) {
        combine(&total, part)
        remaining -= 1
        if remaining == 0 { done(total) }
    }
}

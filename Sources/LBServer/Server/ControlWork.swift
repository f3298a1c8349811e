import Foundation
import Glibc

/// A thread for the control plane's CPU-heavy work that needs no loop: building the routing table of a changed
/// server set (hashing and sorting every ring point, resolving a new host with blocking `getaddrinfo`),
/// measuring the share of keys a change moves, the keyspace shares. The control loop hands the work here and
/// gets the result back through its inbox (`ProxyServer.offLoop`), so a 1,000-server rebuild stalls neither the
/// admin API nor health checks nor the server sources; and, running at a lower scheduling priority (nice +10),
/// it does not take a core from a worker serving clients when every core is busy.
///
/// Started at the first piece of work (most processes never change their servers). `stop()` lets the piece
/// under way finish, drops what is queued, and waits for the thread to end.
final class ControlWork: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [@Sendable () -> Void] = []
    private var started = false
    private var stopping = false
    private let ended = DispatchSemaphore(value: 0)

    /// The nice value the thread takes: below every worker (nice 0), still well above idle work.
    static let niceness: Int32 = 10

    /// Any thread. False once stopped: the work will not run.
    @discardableResult
    func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if stopping { return false }
        queue.append(work)
        if !started {
            started = true
            let thread = Thread { [self] in run() }
            thread.name = "lb-control-work"
            thread.start()
        }
        condition.signal()
        return true
    }

    /// Control loop, at shutdown.
    func stop() {
        condition.lock()
        let wasStarted = started
        stopping = true
        queue.removeAll()
        condition.signal()
        condition.unlock()
        if wasStarted { ended.wait() }
    }

    private func run() {
        // On Linux, PRIO_PROCESS with id 0 is the calling thread alone (the nice value is per thread): the workers
        // and the control loop keep theirs, and this thread starts none that could inherit it.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, ControlWork.niceness)
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                ended.signal()
                return
            }
            let work = queue.removeFirst()
            condition.unlock()
            work()
        }
    }
}

extension ProxyServer {
    /// Runs `work` on the control-work thread, then `then` with its result on the control loop. Nothing runs
    /// once shutdown has begun. `work` must touch only what it is given and what is safe from any thread
    /// (routing states and snapshots are immutable; a `Backend`'s flags are atomic).
    func offLoop<T>(_ work: @escaping () -> T, then: @escaping (T) -> Void) {
        let job = UncheckedSendable((work, then))
        controlWork.submit { [inbox = controlInbox] in
            let result = UncheckedSendable(job.value.0())
            _ = inbox.post { job.value.1(result.value) }
        }
    }

    /// Runs server-set changes (the admin API's, a reload's) one at a time in arrival order: `run` is called
    /// when every earlier change has called its `done`, so each plans from the routing state the previous one
    /// published, and two are never built from the same one. Control loop only.
    func serializeChange(_ run: @escaping (_ done: @escaping () -> Void) -> Void) {
        pendingChanges.append(run)
        if !changeRunning { runNextChange() }
    }

    private func runNextChange() {
        guard !pendingChanges.isEmpty else {
            changeRunning = false
            return
        }
        changeRunning = true
        let run = pendingChanges.removeFirst()
        run { [weak self] in self?.runNextChange() }
    }
}

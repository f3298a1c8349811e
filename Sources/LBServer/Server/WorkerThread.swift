import CLibUV
import Foundation
import LBTLS
import LBCore
import LBUV

/// A queue of closures run on one loop's thread: the only way other threads reach that loop.
/// `post` is thread-safe and wakes the loop with `uv_async_send`; the closures run in order on the loop.
final class LoopInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [@Sendable () -> Void] = []
    private var wakeup: AsyncWakeup?
    private var closed = false

    /// Loop thread: binds the inbox to `loop`.
    func attach(to loop: EventLoop) {
        wakeup = AsyncWakeup(loop: loop) { [unowned self] in self.drain() }
    }

    /// Any thread. Returns false when the inbox is closed: `work` will never run.
    @discardableResult
    func post(_ work: @escaping @Sendable () -> Void) -> Bool {
        lock.lock()
        if closed {
            lock.unlock()
            return false
        }
        queue.append(work)
        // Woken under the lock: `close` clears `wakeup` under it before the handle is closed and freed, so a
        // wake can never reach a closed (or deallocated) async handle.
        wakeup?.wake()
        lock.unlock()
        return true
    }

    /// Loop thread: while `on`, the loop runs even with nothing else active (a successor's worker waits for
    /// `startAccepting` with no listener polling yet).
    func keepsLoopAlive(_ on: Bool) {
        lock.lock()
        let w = wakeup
        lock.unlock()
        w?.keepsLoopAlive(on)
    }

    private func drain() {
        lock.lock()
        let work = queue
        queue.removeAll()
        lock.unlock()
        for w in work { w() }
    }

    /// Loop thread: refuses further work, runs what was accepted, and closes the handle.
    func close() {
        lock.lock()
        closed = true
        let w = wakeup
        wakeup = nil
        lock.unlock()
        drain()
        w?.close()
    }
}

/// A worker on a thread of its own with a loop of its own (every worker: the process's main loop is the
/// control loop). It binds its own `SO_REUSEPORT`
/// listener, keeps its own upstream pools, and reads the shared routing state lock-free. The control loop
/// reaches it only through `post`.
final class WorkerThread: @unchecked Sendable {
    let id: Int
    let inbox = LoopInbox()
    private let settings: ProxySettings
    private let routing: SnapshotPublisher<RoutingState>
    /// The sockets this worker listens on: bound (port fixed by the first worker) or inherited.
    private let plans: [ListenerPlan]
    /// False for a hot upgrade's successor: accept only after `startAccepting`.
    private let accepting: Bool
    /// After `start()`: each listener's config index and socket descriptor, in plan order (for a later hand-off).
    private(set) var descriptors: [(group: Int, fd: Int32)] = []
    /// After `start()`: the address each plan's socket is bound to (the real port for a port-0 bind).
    private(set) var boundAddresses: [(group: Int, address: SocketAddress)] = []
    private let accessLog: (format: AccessLog.Format, path: String)?
    private let started = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var startError: Error?
    /// Set once its loop has ended (read by the control loop's shutdown poll).
    private let doneLock = NSLock()
    private var done = false
    /// Owned by the worker's thread once started.
    nonisolated(unsafe) private(set) var worker: Worker?
    /// The worker's counters once its loop has ended: written on its thread, read after `join()` (a hot
    /// upgrade's old process sends them on as its final counters).
    nonisolated(unsafe) private(set) var finalSnapshot: StatsSnapshot?

    init(id: Int, settings: ProxySettings, routing: SnapshotPublisher<RoutingState>, plans: [ListenerPlan],
         accepting: Bool = true, accessLog: (format: AccessLog.Format, path: String)?) {
        self.id = id
        self.settings = settings
        self.routing = routing
        self.plans = plans
        self.accepting = accepting
        self.accessLog = accessLog
    }

    /// Starts the thread and waits until its listener is bound (or failed: the error is rethrown).
    func start() throws {
        let t = Thread { [self] in body() }
        t.name = "lb-worker-\(id)"
        t.start()
        started.wait()
        if let startError { throw startError }
    }

    private func body() {
        let loop: EventLoop
        do {
            loop = try EventLoop()
        } catch {
            startError = error
            started.signal()
            finished.signal()
            return
        }
        let w = Worker(id: id, loop: loop, settings: settings, routing: routing)
        do {
            if let accessLog { w.accessLog = try AccessLog(loop: loop, format: accessLog.format, path: accessLog.path) }
            for plan in plans {
                let at: SocketAddress
                switch plan.source {
                case .bind(let address):
                    at = try w.listen(
                        on: address, reusePort: plan.reusePort, tls: plan.tls, http2: plan.http2, accepting: accepting)
                case .adopt(let fd):
                    at = try w.adopt(socket: fd, tls: plan.tls, http2: plan.http2)
                }
                descriptors.append((plan.group, w.listeners.last?.descriptor ?? -1))
                boundAddresses.append((plan.group, at))
            }
            worker = w
            inbox.attach(to: loop)
            if !accepting { inbox.keepsLoopAlive(true) }
        } catch {
            // Close what was opened before the failure (the access log's file handle, the listeners bound so far)
            // and free the loop: left open, each handle kept its memory and its Swift owner to the end of the
            // process.
            w.closeAll()
            loop.close()
            startError = error
            started.signal()
            finished.signal()
            return
        }
        started.signal()
        loop.run()
        finalSnapshot = worker?.snapshot()
        loop.close()
        doneLock.lock()
        done = true
        doneLock.unlock()
        finished.signal()
    }

    var isDone: Bool {
        doneLock.lock()
        defer { doneLock.unlock() }
        return done
    }

    /// Runs `work` on the worker's loop with its `Worker`. False when the worker has closed (it never runs).
    @discardableResult
    func post(_ work: @escaping @Sendable (Worker) -> Void) -> Bool {
        inbox.post { [self] in
            if let w = worker { work(w) }
        }
    }

    /// Hot upgrade: starts accepting on every listener, then calls `done` on the worker's thread with the
    /// error, if `listen(2)` refused one.
    func startAccepting(done: @escaping @Sendable (SetupError?) -> Void) {
        let posted = post { [inbox] w in
            inbox.keepsLoopAlive(false)
            do throws(SetupError) { try w.startAccepting() } catch { return done(error) }
            done(nil)
        }
        if !posted { done(SetupError("worker \(id) has stopped")) }
    }

    /// Graceful shutdown: stop accepting, let exchanges finish, then close everything; the loop then ends.
    /// `closeIdle` as for `Worker.beginDrain`; `stoppedAccepting` runs on the worker's thread once its listeners
    /// are closed (at once if the worker has already stopped).
    func beginDrain(closeIdle: Bool = true, stoppedAccepting: (@Sendable () -> Void)? = nil) {
        let posted = post { [self] w in
            w.beginDrain(closeIdle: closeIdle)
            stoppedAccepting?()
            let poll = LoopTimer(loop: w.loop) { [self] in
                if w.isIdle { closeOnLoop(w) }
            }
            drainPoll = poll
            poll.start(timeout: 0, repeat: 20)
        }
        if !posted { stoppedAccepting?() }
    }

    /// The drain poll timer; touched only on the worker's thread.
    nonisolated(unsafe) private var drainPoll: LoopTimer?

    /// Closes every handle of the worker now (shutdown deadline); its loop ends.
    func closeNow() {
        post { [self] w in closeOnLoop(w) }
    }

    /// Worker thread: closes everything, so the loop ends; the inbox refuses work from then on.
    private func closeOnLoop(_ w: Worker) {
        drainPoll?.close()
        drainPoll = nil
        w.closeAll()
        inbox.close()
    }

    func join() { finished.wait() }
}


/// How one worker gets one listening socket: bound to an address (with SO_REUSEPORT), or inherited from the
/// process a hot upgrade replaces. `group` is the listener's index in the config.
struct ListenerPlan: Sendable {
    enum Source {
        case bind(SocketAddress)
        case adopt(Int32)
    }

    let group: Int
    let source: Source
    let tls: SnapshotPublisher<TLSListenerContext>?
    /// HTTP/2 is offered (ALPN h2 on TLS, h2c prior knowledge on plain).
    var http2 = true
    /// SO_REUSEPORT on a bound socket: with one worker it stays off, so no other process can bind beside it.
    var reusePort = true
}

/// A traffic listener as the workers bind it: the address (with the port the first bind chose) and, for TLS,
/// the context every worker shares, published so a certificate reload reaches every worker's next accept.
struct BoundListener: Sendable {
    let address: SocketAddress
    let tls: SnapshotPublisher<TLSListenerContext>?
    /// HTTP/2 is offered (ALPN h2 on TLS, h2c prior knowledge on plain).
    var http2 = true
}

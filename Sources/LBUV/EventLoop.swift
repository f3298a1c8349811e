import CLibUV
import Glibc

/// Owns one `uv_loop_t` and the per-loop scratch memory. One thread per loop: every method
/// here and every handle on this loop is used from the thread that calls `run()`.
public final class EventLoop {
    public let raw: UnsafeMutablePointer<uv_loop_t>

    /// The read buffer every stream on this loop reads into. libuv calls `alloc_cb` and then `read_cb` for the
    /// same stream before touching another one, and every read callback consumes or copies its bytes before it
    /// returns, so one buffer serves all connections (10k idle connections hold no read memory).
    let readBuffer: UnsafeMutableRawPointer
    let readBufferSize: Int

    public init(readBufferSize: Int = 64 * 1024) throws(SetupError) {
        raw = .allocate(capacity: 1)
        let status = uv_loop_init(raw)
        if status < 0 {
            raw.deallocate()
            throw SetupError("uv_loop_init: \(UVError(status))")
        }
        self.readBufferSize = readBufferSize
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        // How a handle finds its loop's object (`TCPConnection.loop`); the loop outlives every handle on it.
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// Non-blocking polls in a row that may find nothing before the loop blocks in epoll_wait (`busy_polls`).
    /// 0 = block whenever nothing is ready. Set before `run()`.
    public var busyPolls = 0
    /// Wake-up coalescing (`coalesce_us`), in nanoseconds; 0 = off. Set before `run()`. See `run()`.
    public var coalesceNanos = 0
    /// How many exchanges the loop's owner is waiting on: events that will come. Read when the loop is idle.
    public var pending: () -> Int = { 0 }
    /// Coalescing needs this many pending exchanges: below it, a sleep would mostly delay one or two events.
    public static let coalesceMinPending = 16
    /// Read events so far (counted in the alloc callback): how `run` tells a poll that found work.
    var readEvents: UInt64 = 0
    /// Coalescing sleeps taken.
    public private(set) var coalescedSleeps: UInt64 = 0
    /// Events the recent coalescing sleeps found waiting when they ended, on average (an EWMA over about 8
    /// sleeps), in 1/16ths. Starts, and restarts after a back-off, above the threshold, so one empty sleep
    /// does not switch coalescing off.
    private var coalesceYield = EventLoop.yieldRestart
    /// A sleep that finds fewer than 2 events on average saves no wake-up; it only delays the one it finds.
    private static let yieldThreshold = 2 * 16
    private static let yieldRestart = 3 * 16
    private var stopRequested = false

    /// Work the loop's owner runs once the stream callback being handled has returned (`runAfterEvent`), set
    /// once before `run()`. Asked for with `requestAfterEvent()`; it then runs after the current read, write,
    /// connect or close callback, outside any connection's own call. Under load this is far sooner than the end of
    /// the loop turn: libuv's poll phase handles up to 48 rounds of 1,024 events (`uv__io_poll`) before the turn
    /// ends, and an eventfd wake-up waits behind every socket already ready. Work asked for from a timer, an async
    /// wake-up or a check runs after the next stream callback, so the owner needs a fallback for those (a
    /// `LoopCheck`).
    public var afterEvent: (() -> Void)?
    @usableFromInline var afterEventRequested = false

    /// Loop thread only. Idempotent until the work runs.
    @inlinable
    public func requestAfterEvent() { afterEventRequested = true }

    /// Called by the stream callbacks after their handler returned: one load and a branch when nothing is asked.
    @inline(__always)
    func runAfterEvent() {
        // The work may ask again (a granted request that fails at once frees its slot): run until it does not.
        while afterEventRequested {
            afterEventRequested = false
            afterEvent?()
        }
    }

    /// Runs until no active handle remains (or `stop()`).
    ///
    /// With neither setting on, this is libuv's loop: block in epoll_wait whenever nothing is ready.
    ///
    /// `busyPolls` > 0: after a read event, poll without blocking until that many polls in a row found no read
    /// event, and only then block in epoll_wait, so a loop under load catches the next events while still
    /// running.
    ///
    /// `coalesceNanos` > 0 (wake-up coalescing, like a NIC's interrupt moderation): when nothing is ready and
    /// at least `coalesceMinPending` exchanges are under way, sleep that long on a timer instead of blocking in
    /// epoll_wait, then take everything that arrived in one poll. Blocked in epoll_wait, every event wakes the
    /// loop by itself: one context switch each, and on one host the peer that sent it pays for waking this
    /// thread. A timed sleep is one wake-up for all of them. It delays an event by at most the sleep plus the
    /// timer slack (a tenth of it), so it stays off while few exchanges are pending, and it backs off while its
    /// sleeps find fewer than 2 events on average (it tries again after 64 blocking waits). It never sleeps
    /// while libuv has work that must not wait (queued callbacks, closing handles, a due timer). A sleep that
    /// finds nothing is followed by a blocking wait: an idle loop sleeps in epoll_wait.
    public func run() {
        guard busyPolls > 0 || coalesceNanos > 0 else {
            uv_run(raw, UV_RUN_DEFAULT)
            return
        }
        if coalesceNanos > 0 {
            // The kernel may fire a sleep's timer late by the thread's timer slack (50 µs by default).
            _ = lb_set_timer_slack_ns(UInt(max(1_000, coalesceNanos / 10)))
        }
        var sleep = timespec(tv_sec: coalesceNanos / 1_000_000_000, tv_nsec: coalesceNanos % 1_000_000_000)
        stopRequested = false
        var idlePolls = busyPolls  // no spin before the first read event
        var justSlept = false
        var waitsSinceProbe = 0
        while !stopRequested {
            let spinning = idlePolls < busyPolls
            let mayCoalesce =
                coalesceNanos > 0 && !justSlept && coalesceYield >= EventLoop.yieldThreshold
                && pending() >= EventLoop.coalesceMinPending
            if spinning || mayCoalesce || justSlept {
                // Poll without blocking: only an empty poll may lead to a spin, a sleep or a blocking wait.
                let before = readEvents
                if uv_run(raw, UV_RUN_NOWAIT) == 0 { break }
                let found = Int(truncatingIfNeeded: readEvents &- before)
                if justSlept {
                    coalesceYield = (coalesceYield * 7 + min(found, 64) * 16) / 8
                    justSlept = false
                }
                if found > 0 {
                    idlePolls = 0
                    continue
                }
                if spinning {
                    idlePolls += 1
                    continue
                }
                // uv_backend_timeout is 0 when libuv would not block: callbacks queued, handles closing, a
                // timer due. Those run at once; only a loop that would wait for I/O may sleep instead.
                if mayCoalesce && uv_backend_timeout(raw) != 0 {
                    nanosleep(&sleep, nil)
                    coalescedSleeps &+= 1
                    justSlept = true
                    continue
                }
            }
            // Block until something is ready (or process what already is).
            let before = readEvents
            if uv_run(raw, UV_RUN_ONCE) == 0 { break }
            // Spin again only after reads: a timer or a cross-thread wake-up is no sign of more traffic.
            idlePolls = readEvents == before ? busyPolls : 0
            if coalesceYield < EventLoop.yieldThreshold {
                waitsSinceProbe += 1
                if waitsSinceProbe >= 64 {
                    waitsSinceProbe = 0
                    coalesceYield = EventLoop.yieldRestart
                }
            }
        }
    }

    public func stop() {
        stopRequested = true
        uv_stop(raw)
    }

    /// Milliseconds of the loop's cached clock (updated once per iteration).
    @inlinable
    public var now: UInt64 { uv_now(raw) }

    /// Runs the loop until every closing handle has delivered its close callback, then frees the loop.
    /// Returns the number of handles still open (0 on a clean shutdown); they are reported, not leaked silently.
    @discardableResult
    public func close() -> Int {
        uv_run(raw, UV_RUN_DEFAULT)
        var open = 0
        uv_walk(raw, Callbacks.countHandle, &open)
        if open == 0 {
            uv_loop_close(raw)
            raw.deallocate()
            readBuffer.deallocate()
        }
        return open
    }
}

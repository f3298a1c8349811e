import CLibUV

/// Owns one `uv_loop_t` and the per-loop scratch memory. One thread per loop (STYLE habit 10): every method
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
    }

    /// Non-blocking polls in a row that may find nothing before the loop blocks in epoll_wait (`busy_polls`).
    /// 0 = block whenever nothing is ready. Set before `run()`.
    public var busyPolls = 0
    /// Read events so far (counted in the alloc callback): how `run` tells a poll that found work.
    var readEvents: UInt64 = 0
    private var stopRequested = false

    /// Runs until no active handle remains (or `stop()`). With `busyPolls` > 0 the loop polls without blocking
    /// until that many polls in a row found no read event, and only then sleeps in epoll_wait: a proxy under
    /// load then catches the next events while still running instead of being woken for each few.
    public func run() {
        guard busyPolls > 0 else {
            uv_run(raw, UV_RUN_DEFAULT)
            return
        }
        stopRequested = false
        var idle = 0
        while !stopRequested {
            let before = readEvents
            let alive = uv_run(raw, idle < busyPolls ? UV_RUN_NOWAIT : UV_RUN_ONCE)
            if alive == 0 { break }
            idle = readEvents == before ? idle + 1 : 0
        }
    }

    public func stop() {
        stopRequested = true
        uv_stop(raw)
    }

    /// Milliseconds of the loop's cached clock (updated once per iteration).
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

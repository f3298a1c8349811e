import CLibUV

// Every C callback libuv calls lives in this file. Each one is capture-free, recovers its
// owner from `data` without retaining it (the handle holds the one retain until its close callback), maps the
// status to a typed value and calls one named Swift method. Nothing else in the program is called from C.

@inline(__always)
func owner<T: AnyObject>(_ data: UnsafeMutableRawPointer?, as: T.Type = T.self) -> T {
    Unmanaged<T>.fromOpaque(data!).takeUnretainedValue()
}

enum Callbacks {
    // MARK: streams

    static let alloc: uv_alloc_cb = { handle, _, buf in
        let conn: TCPConnection = owner(handle!.pointee.data)
        let loop = conn.loop
        loop.readEvents &+= 1
        let whole = UInt32(truncatingIfNeeded: loop.readBufferSize)
        let limit = conn.readLimit
        buf!.pointee = uv_buf_init(
            loop.readBuffer.assumingMemoryBound(to: CChar.self), limit != 0 && limit < whole ? limit : whole)
    }

    // Each stream callback ends with `EventLoop.runAfterEvent()`: work the handler asked for to run once no
    // connection's call is under way.

    static let read: uv_read_cb = { stream, nread, buf in
        let conn: TCPConnection = owner(stream!.pointee.data)
        if nread > 0 {
            conn.didRead(UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread))
        } else if nread < 0 {
            conn.didReadEnd(UVError(Int32(nread)))
        }
        // nread == 0: nothing this time (EAGAIN), not end of file.
        conn.loop.runAfterEvent()
    }

    static let write: uv_write_cb = { req, status in
        let conn: TCPConnection = owner(req!.pointee.data)
        conn.didWrite(status: status)
        conn.loop.runAfterEvent()
    }

    static let connect: uv_connect_cb = { req, status in
        let conn: TCPConnection = owner(req!.pointee.data)
        conn.didConnect(status: status)
        conn.loop.runAfterEvent()
    }

    static let closeConnection: uv_close_cb = { handle in
        let unmanaged = Unmanaged<TCPConnection>.fromOpaque(handle!.pointee.data!)
        let conn = unmanaged.takeUnretainedValue()
        let loop = conn.loop  // outlives its connections
        conn.didClose()
        unmanaged.release()  // the handle's one retain, taken in TCPConnection.init
        handle!.deallocate()
        loop.runAfterEvent()
    }

    // MARK: listeners

    static let closeListener: uv_close_cb = { handle in
        Unmanaged<Listener>.fromOpaque(handle!.pointee.data!).release()
        handle!.deallocate()
    }

    // MARK: file writes (on libuv's thread pool)

    static let fsWrite: uv_fs_cb = { req in
        let write: FileWrite = owner(req!.pointee.data)
        let result = req!.pointee.result
        uv_fs_req_cleanup(req)
        write.didWrite(result: result)
    }

    // MARK: timers, signals, async wake-ups

    static let timer: uv_timer_cb = { handle in
        let timer: LoopTimer = owner(handle!.pointee.data)
        timer.fire()
    }

    static let closeTimer: uv_close_cb = { handle in
        let unmanaged = Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data!)
        unmanaged.release()
        handle!.deallocate()
    }

    static let check: uv_check_cb = { handle in
        let check: LoopCheck = owner(handle!.pointee.data)
        check.fire()
    }

    /// A `LoopCheck`'s idle handle does nothing: being active, it keeps the poll from blocking.
    static let idleNothing: uv_idle_cb = { _ in }

    /// A `LoopCheck`'s idle handle has no Swift owner: its memory goes here.
    static let closeIdle: uv_close_cb = { handle in handle!.deallocate() }

    static let closeCheck: uv_close_cb = { handle in
        let unmanaged = Unmanaged<LoopCheck>.fromOpaque(handle!.pointee.data!)
        unmanaged.release()
        handle!.deallocate()
    }

    static let signal: uv_signal_cb = { handle, signum in
        let watcher: SignalWatcher = owner(handle!.pointee.data)
        watcher.fire(signum)
    }

    static let closeSignal: uv_close_cb = { handle in
        let unmanaged = Unmanaged<SignalWatcher>.fromOpaque(handle!.pointee.data!)
        unmanaged.release()
        handle!.deallocate()
    }

    /// `uv_walk` visitor: counts the handles still open into the `Int` that `arg` points at.
    static let countHandle: uv_walk_cb = { _, arg in
        arg!.assumingMemoryBound(to: Int.self).pointee += 1
    }

    static let async: uv_async_cb = { handle in
        let wakeup: AsyncWakeup = owner(handle!.pointee.data)
        wakeup.fire()
    }

    static let closeAsync: uv_close_cb = { handle in
        let unmanaged = Unmanaged<AsyncWakeup>.fromOpaque(handle!.pointee.data!)
        unmanaged.release()
        handle!.deallocate()
    }

    // MARK: local (Unix) sockets and child processes: the control socket and hot upgrades

    static let localConnection: uv_connection_cb = { server, status in
        let listener: LocalSocketServer = owner(server!.pointee.data)
        listener.didAccept(status: status)
    }

    static let closeLocalServer: uv_close_cb = { handle in
        Unmanaged<LocalSocketServer>.fromOpaque(handle!.pointee.data!).release()
        handle!.deallocate()
    }

    static let localAlloc: uv_alloc_cb = { handle, _, buf in
        let conn: LocalSocketConnection = owner(handle!.pointee.data)
        let loop = conn.loop
        buf!.pointee = uv_buf_init(loop.readBuffer.assumingMemoryBound(to: CChar.self), UInt32(loop.readBufferSize))
    }

    static let localRead: uv_read_cb = { stream, nread, buf in
        let conn: LocalSocketConnection = owner(stream!.pointee.data)
        if nread > 0 {
            conn.didRead(UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread))
        } else if nread < 0 {
            conn.didReadEnd()
        }
    }

    static let localWrite: uv_write_cb = { req, status in
        let write: LocalWrite = owner(req!.pointee.data)
        write.connection.didWrite(status: status)
        write.finished()
    }

    static let closeLocalConnection: uv_close_cb = { handle in
        let unmanaged = Unmanaged<LocalSocketConnection>.fromOpaque(handle!.pointee.data!)
        unmanaged.takeUnretainedValue().didClose()
        unmanaged.release()
        handle!.deallocate()
    }

    static let processExit: uv_exit_cb = { handle, status, signal in
        let process: ChildProcess = owner(handle!.pointee.data)
        process.didExit(status: status, signal: signal)
    }

    static let closeProcess: uv_close_cb = { handle in
        Unmanaged<ChildProcess>.fromOpaque(handle!.pointee.data!).release()
        handle!.deallocate()
    }

    // MARK: polled descriptors (listening sockets, and sockets another library opens, e.g. c-ares's)

    static let poll: uv_poll_cb = { handle, status, events in
        let poll: LoopPoll = owner(handle!.pointee.data)
        poll.fire(status: status, events: events)
    }

    static let closePoll: uv_close_cb = { handle in
        Unmanaged<LoopPoll>.fromOpaque(handle!.pointee.data!).release()
        handle!.deallocate()
    }
}

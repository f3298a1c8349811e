import CLibUV

/// One TCP stream on one loop: the base of client, upstream, admin and demo-backend connections.
///
/// Ownership: the `uv_tcp_t` is heap-allocated here and holds one retain on this object in
/// `data` until its close callback releases it and frees the handle. `close()` is idempotent and the only way
/// a connection ends; subclasses learn of the end in `didClose()`.
///
/// Writing: bytes are appended to `out` and sent by `flush()` with `uv_try_write`
/// first; only what the kernel did not take is copied into `inflight`, a buffer owned by this connection and
/// passed to `uv_write`, untouched until the write callback. One `uv_write` is in flight at a time, so order is
/// kept and nothing allocates in the steady state. `send(_:)` hands bytes to the kernel directly when nothing is
/// queued or in flight ahead of them (a streamed body), and appends what it did not take.
///
/// Subclasses (in LBServer) override the `open` hooks; everything else is `final`, so calls from another
/// module are direct, as they were when subclasses and base shared a module.
open class TCPConnection {
    public let handle: UnsafeMutablePointer<uv_tcp_t>

    /// The loop this connection's handle is on, found through the handle (`uv_loop_t.data`) rather than stored:
    /// ten thousand idle connections are ten thousand of these objects, and a field less keeps each in a smaller
    /// malloc size class. Valid until the close callback frees the handle (`Callbacks.closeConnection` reads it
    /// before): an object kept past its close must not ask.
    @inlinable
    public final var loop: EventLoop {
        Unmanaged<EventLoop>.fromOpaque(handle.pointee.loop.pointee.data).takeUnretainedValue()
    }

    /// Bytes waiting to be written (not yet handed to the kernel).
    public final var out: [UInt8] = []
    private var inflight: UnsafeMutableRawPointer?
    /// 32 bits each (a write is at most what `uv_buf_init`'s 32-bit length takes), for the same reason as `loop`.
    private var inflightCapacity: UInt32 = 0
    @usableFromInline final var inflightCount: UInt32 = 0
    private var writeReq: UnsafeMutablePointer<uv_write_t>?
    private var connectReq: UnsafeMutablePointer<uv_connect_t>?
    public private(set) final var isWriting = false
    public private(set) final var isReading = false
    public private(set) final var isClosing = false
    /// Close as soon as everything queued has been written.
    private var closeWhenFlushed = false
    /// The most one read takes (the alloc callback offers no more of the loop's buffer); 0: the whole buffer.
    /// Every byte read must be kept until the peer it goes to takes it, so a connection relaying to a slow
    /// reader reads in small pieces. (Declared here, it fills the padding after the flags above.)
    public final var readLimit: UInt32 = 0

    @inlinable
    public final var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
    }

    public init(loop: EventLoop) {
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    deinit {
        inflight?.deallocate()
        writeReq?.deallocate()
        connectReq?.deallocate()
    }

    // MARK: subclass hooks

    open func didRead(_ bytes: UnsafeRawBufferPointer) {}
    /// EOF or a read error. The default closes.
    open func didReadEnd(_ error: UVError) { close() }
    /// Called after a write completed and `out` was flushed again; `writeQueueBytes` is lower than before.
    open func didDrain() {}
    /// Connect result (status 0 or a negative libuv error).
    open func didConnectResult(_ status: Int32) {}
    /// A write failed (peer reset); the connection is closed right after.
    open func didFailWrite(_ error: UVError) {}
    /// The handle is closed and its memory about to go. Pending requests have already been cancelled.
    open func didClose() {}
    /// `close()` or `abort()` began, or the connection closed itself (a failed write): the socket is closed now
    /// (libuv closes the descriptor in `uv_close`), though `didClose` comes only at the end of the loop turn.
    open func didBeginClosing() {}

    // MARK: reading

    public final func startReading() {
        guard !isReading, !isClosing else { return }
        let status = uv_read_start(stream, Callbacks.alloc, Callbacks.read)
        if status < 0 { close(); return }
        isReading = true
    }

    public final func stopReading() {
        guard isReading, !isClosing else { return }
        uv_read_stop(stream)
        isReading = false
    }

    // MARK: writing

    /// Bytes queued for this peer and not yet taken by the kernel.
    @inlinable
    public final var writeQueueBytes: Int { out.count + (isWriting ? Int(inflightCount) : 0) }

    @inlinable @inline(__always)
    public final func append(_ bytes: UnsafeRawBufferPointer) { out.append(contentsOf: bytes) }

    @inlinable @inline(__always)
    public final func append(_ bytes: [UInt8]) { out.append(contentsOf: bytes) }

    /// Hands `bytes` to the kernel at once, after what `out` holds (a response head) in the same `writev`: a
    /// response body read from a backend goes out without a copy while the client keeps up. What the kernel does
    /// not take is copied once, into the buffer lent to `uv_write`, and written as the client reads; `out` keeps
    /// no body bytes, so a slow reader costs lb that one buffer. Bytes sent while a write is in flight wait in
    /// `out`. An error is left for the next `flush()` to find, so no close happens inside a caller's read
    /// callback.
    public final func send(_ bytes: UnsafeRawBufferPointer) {
        // A closing connection writes nothing more: holding bytes for it would only keep them until its close.
        if isClosing { return }
        guard !isWriting, !closeWhenFlushed, let base = bytes.baseAddress else {
            out.append(contentsOf: bytes)
            return
        }
        let body = uv_buf_init(
            UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: CChar.self)), UInt32(bytes.count))
        let queued = out.count
        let status: Int32
        if queued == 0 {
            var buf = body
            status = uv_try_write(stream, &buf, 1)
        } else {
            status = out.withUnsafeMutableBytes { raw in
                var bufs = (uv_buf_init(raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(queued)), body)
                return withUnsafeMutablePointer(to: &bufs) {
                    $0.withMemoryRebound(to: uv_buf_t.self, capacity: 2) { uv_try_write(stream, $0, 2) }
                }
            }
        }
        if status == queued + bytes.count {
            if queued > 0 { clearOut() }
            return
        }
        let written = status > 0 ? Int(status) : 0
        guard status > 0 || status == UV_EAGAIN.rawValue else {
            out.append(contentsOf: bytes)
            return
        }
        // The kernel is full: the rest goes straight to the buffer lent to uv_write.
        let headWritten = min(written, queued)
        let bodyRest = UnsafeRawBufferPointer(rebasing: bytes[(written - headWritten)...])
        let started = out.withUnsafeBytes { raw in
            startWrite(UnsafeRawBufferPointer(rebasing: raw[headWritten...]), bodyRest)
        }
        if started < 0 {
            // Left for `flush()` to find: `out` keeps what the kernel did not take, in order.
            out.removeSubrange(0..<headWritten)
            out.append(contentsOf: bodyRest)
        } else if queued > 0 {
            clearOut()
        }
    }

    /// Hands `out` to the kernel: `uv_try_write` first, `uv_write` for the remainder.
    public final func flush() {
        guard !isWriting, !isClosing else { return }
        if out.isEmpty {
            if closeWhenFlushed { close() }
            return
        }
        var written = 0
        let status: Int32 = out.withUnsafeMutableBytes { raw in
            var buf = uv_buf_init(raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(raw.count))
            return uv_try_write(stream, &buf, 1)
        }
        if status >= 0 {
            written = Int(status)
        } else if status != UV_EAGAIN.rawValue {
            failWrite(UVError(status))
            return
        }
        let remaining = out.count - written
        if remaining == 0 {
            clearOut()
            if closeWhenFlushed { close() }
            return
        }
        // The kernel is full: copy the rest into the buffer this connection lends to uv_write.
        let started = out.withUnsafeBytes { raw in startWrite(UnsafeRawBufferPointer(rebasing: raw[written...])) }
        if started < 0 {
            failWrite(UVError(started))
            return
        }
        clearOut()
    }

    /// Empties `out`, keeping storage of up to 64 KiB for the next heads and small responses.
    private func clearOut() { out.removeAll(keepingCapacity: out.capacity <= 64 * 1024) }

    /// The least the buffer lent to `uv_write` is allocated with.
    static let smallWrite: UInt32 = 16 * 1024

    /// Copies `bytes` and then `more` into the buffer lent to `uv_write` and starts the write; returns libuv's
    /// status, which the caller handles (a close must not happen inside a caller's read callback). Nothing may be
    /// in flight.
    private func startWrite(
        _ bytes: UnsafeRawBufferPointer, _ more: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) -> Int32 {
        let remaining = bytes.count + more.count
        if Int(inflightCapacity) < remaining {
            inflight?.deallocate()
            let capacity = max(remaining, Int(TCPConnection.smallWrite))
            inflightCapacity = UInt32(capacity)
            inflight = .allocate(byteCount: capacity, alignment: 16)
        }
        if let base = bytes.baseAddress { inflight!.copyMemory(from: base, byteCount: bytes.count) }
        if let base = more.baseAddress {
            (inflight! + bytes.count).copyMemory(from: base, byteCount: more.count)
        }
        inflightCount = UInt32(remaining)
        if writeReq == nil {
            writeReq = .allocate(capacity: 1)
        }
        writeReq!.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        var buf = uv_buf_init(inflight!.assumingMemoryBound(to: CChar.self), UInt32(remaining))
        let s = uv_write(writeReq, stream, &buf, 1, Callbacks.write)
        if s >= 0 { isWriting = true }
        return s
    }

    /// Frees `out`'s storage and the buffer lent to `uv_write` when nothing is queued or in flight.
    public final func releaseIdleBuffers() -> Int {
        guard out.isEmpty, !isWriting else { return 0 }
        let released = out.capacity + Int(inflightCapacity)
        out = []
        inflight?.deallocate()
        inflight = nil
        inflightCapacity = 0
        return released
    }

    /// Write callback (from Callbacks.write).
    final func didWrite(status: Int32) {
        isWriting = false
        // A big buffer left by one large remainder goes once the writes are small again (a slow reader's
        // response read in small pieces); kept, it would cost every slow reader the largest write it ever had.
        if inflightCount <= TCPConnection.smallWrite && inflightCapacity > TCPConnection.smallWrite {
            inflight?.deallocate()
            inflight = nil
            inflightCapacity = 0
        }
        inflightCount = 0
        if status < 0 {
            if !isClosing { failWrite(UVError(status)) }
            return
        }
        flush()
        if !isClosing { didDrain() }
    }

    private func failWrite(_ error: UVError) {
        out.removeAll()
        didFailWrite(error)
        close()
    }

    /// Closes once everything queued is written (a response followed by `Connection: close`).
    public final func closeAfterFlush() {
        closeWhenFlushed = true
        stopReading()
        if !isWriting { flush() }
    }

    // MARK: connecting

    /// Starts a non-blocking connect; the result arrives in `didConnectResult`.
    public final func connect(to address: UnsafePointer<sockaddr>) {
        if connectReq == nil { connectReq = .allocate(capacity: 1) }
        connectReq!.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let status = uv_tcp_connect(connectReq, handle, address, Callbacks.connect)
        if status < 0 {
            didConnectResult(status)
        }
    }

    final func didConnect(status: Int32) {
        if isClosing { return }
        didConnectResult(status)
    }

    // MARK: closing

    /// Idempotent. The object stays alive until the close callback; pending write/connect requests are
    /// cancelled first and must not touch the other side of a proxy pair.
    public final func close() {
        guard beginClosing() else { return }
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeConnection)
    }

    /// Sends a TCP reset instead of a FIN (used when a response had to be cut short).
    public final func abort() {
        guard beginClosing() else { return }
        uv_tcp_close_reset(handle, Callbacks.closeConnection)
    }

    /// Marks the connection closing; false when it already was (close and abort run once between them).
    private func beginClosing() -> Bool {
        guard !isClosing else { return false }
        isClosing = true
        isReading = false
        didBeginClosing()
        return true
    }
}

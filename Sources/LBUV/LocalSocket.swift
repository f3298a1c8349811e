import CLibUV
import Glibc

/// A listening Unix stream socket (`uv_pipe_t`) on one loop: the control socket. Same ownership rule as the
/// TCP listener: the handle holds one retain until its close callback. Loop thread only.
public final class LocalSocketServer {
    public unowned(unsafe) let loop: EventLoop
    public let handle: UnsafeMutablePointer<uv_pipe_t>
    public let path: String
    private var isClosing = false
    /// Called for each pending connection; it must call `accept(into:)`.
    public var onAccept: (LocalSocketServer) -> Void = { _ in }

    /// Binds `path` (which must not exist) and listens. The socket file is left with the mode the umask gives;
    /// callers restrict it with `chmod`. Closing never removes the file (unlike a `uv_pipe_bind` socket): whose
    /// it is by then is the owner's call. Throws naming the path and the reason.
    public init(loop: EventLoop, path: String, backlog: Int32 = 16) throws(SetupError) {
        self.loop = loop
        self.path = path
        handle = .allocate(capacity: 1)
        uv_pipe_init(loop.raw, handle, 0)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        do throws(SetupError) {
            let fd = lb_unix_listen(path, backlog)
            guard fd >= 0 else {
                throw SetupError("cannot bind control socket \(path): \(String(cString: strerror(-fd)))")
            }
            let opened = uv_pipe_open(handle, fd)
            if opened < 0 { Glibc.close(fd) }
            try UVError.check(opened, "cannot use control socket \(path)")
            try UVError.check(uv_listen(stream, backlog, Callbacks.localConnection), "cannot listen on \(path)")
        } catch {
            close()
            throw error
        }
    }

    var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
    }

    func didAccept(status: Int32) {
        if status >= 0 { onAccept(self) }
    }

    /// Accepts the pending connection into `conn`; false (and `conn` closed) on failure.
    public func accept(into conn: LocalSocketConnection) -> Bool {
        if uv_accept(stream, conn.stream) < 0 {
            conn.close()
            return false
        }
        return true
    }

    /// Stops listening. The socket file stays: removing it is the owner's decision (it may be another
    /// process's by now). Idempotent.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeLocalServer)
    }
}

/// One accepted connection on a `LocalSocketServer`: reads bytes, writes bytes, and can send descriptors
/// (SCM_RIGHTS) with a message. Low volume: each write owns a copy of its bytes until its callback.
/// Loop thread only.
public final class LocalSocketConnection {
    public unowned(unsafe) let loop: EventLoop
    public let handle: UnsafeMutablePointer<uv_pipe_t>
    public private(set) var isClosing = false
    private var pendingWrites = 0
    private var closeWhenWritten = false
    /// Bytes read; the buffer is valid only during the call.
    public var onRead: (UnsafeRawBufferPointer) -> Void = { _ in }
    /// End of stream or a read error; the connection closes right after.
    public var onEnd: () -> Void = {}
    /// The handle is closed (always called once).
    public var onClose: () -> Void = {}

    public init(loop: EventLoop) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        uv_pipe_init(loop.raw, handle, 0)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
    }

    var descriptor: Int32 {
        var fd: uv_os_fd_t = -1
        uv_fileno(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), &fd)
        return fd
    }

    /// The connected peer's process and user id (SO_PEERCRED), nil if the kernel cannot say.
    public var peer: (pid: Int32, uid: UInt32)? {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        guard lb_peer_credentials(descriptor, &pid, &uid) == 0 else { return nil }
        return (pid, uid)
    }

    public func startReading() {
        guard !isClosing else { return }
        if uv_read_start(stream, Callbacks.localAlloc, Callbacks.localRead) < 0 { close() }
    }

    func didRead(_ bytes: UnsafeRawBufferPointer) { onRead(bytes) }

    func didReadEnd() {
        onEnd()
        close()
    }

    /// Queues `bytes`; they go out in order. Ignored once closing.
    public func write(_ bytes: [UInt8]) {
        guard !isClosing, !bytes.isEmpty else { return }
        let request = LocalWrite(bytes: bytes, connection: self)
        let status = request.start(on: stream)
        if status < 0 {
            request.finished()
            close()
            return
        }
        pendingWrites += 1
    }

    /// Sends `bytes` with `descriptors` attached in one `sendmsg` (the descriptors travel with the first byte),
    /// then queues whatever the kernel did not take. Only when no write is pending, so the bytes keep their
    /// order. Returns false (nothing sent) when writes are pending or the kernel refused the message now;
    /// the caller answers with an error then. The descriptors stay open in this process.
    public func send(_ bytes: [UInt8], descriptors: [Int32]) -> Bool {
        guard !isClosing, pendingWrites == 0, !bytes.isEmpty else { return false }
        let sent = bytes.withUnsafeBytes { raw in
            descriptors.withUnsafeBufferPointer { fds in
                lb_send_with_fds(descriptor, raw.baseAddress, raw.count, fds.baseAddress, Int32(fds.count), Int32(MSG_DONTWAIT))
            }
        }
        guard sent > 0 else { return false }
        if sent < bytes.count { write(Array(bytes[sent...])) }
        return true
    }

    func didWrite(status: Int32) {
        pendingWrites -= 1
        if status < 0 {
            close()
        } else if closeWhenWritten && pendingWrites == 0 {
            close()
        }
    }

    /// Closes once every queued write has completed.
    public func closeAfterWrites() {
        if pendingWrites == 0 { close() } else { closeWhenWritten = true }
    }

    /// Idempotent. Pending writes get their callbacks (cancelled) before the close callback.
    public func close() {
        guard !isClosing else { return }
        isClosing = true
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self), Callbacks.closeLocalConnection)
    }

    func didClose() {
        onRead = { _ in }
        onEnd = {}
        let done = onClose
        onClose = {}
        done()
    }
}

/// One `uv_write` of a `LocalSocketConnection`: owns the request and the bytes until the write callback, and
/// keeps itself (and so the bytes) alive through one retain in the request's `data`.
final class LocalWrite {
    let request: UnsafeMutablePointer<uv_write_t>
    let bytes: UnsafeMutableRawBufferPointer
    let connection: LocalSocketConnection

    init(bytes source: [UInt8], connection: LocalSocketConnection) {
        self.connection = connection
        request = .allocate(capacity: 1)
        bytes = .allocate(byteCount: source.count, alignment: 1)
        source.withUnsafeBytes { bytes.copyMemory(from: $0) }
        request.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    func start(on stream: UnsafeMutablePointer<uv_stream_t>) -> Int32 {
        var buf = uv_buf_init(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(bytes.count))
        return uv_write(request, stream, &buf, 1, Callbacks.localWrite)
    }

    /// Releases the retain taken in `init` (the write callback, or a `uv_write` that failed to start).
    func finished() {
        Unmanaged.passUnretained(self).release()
    }

    deinit {
        request.deallocate()
        bytes.deallocate()
    }
}

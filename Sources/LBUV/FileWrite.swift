import CLibUV

/// One `uv_fs_write` at a time to a file descriptor, run on libuv's thread pool so the loop never blocks on
/// the file; `completion` gets the result on the loop's thread. The owner keeps this object alive while a
/// write is in flight (the request holds no retain). Loop thread only.
public final class FileWrite {
    private unowned(unsafe) let loop: EventLoop
    private let request: UnsafeMutablePointer<uv_fs_t>
    /// Bytes written (possibly fewer than asked), or a negative libuv error.
    private let completion: (Int) -> Void
    public private(set) var isWriting = false

    public init(loop: EventLoop, completion: @escaping (Int) -> Void) {
        self.loop = loop
        self.completion = completion
        request = .allocate(capacity: 1)
    }

    deinit { request.deallocate() }

    /// Starts writing `count` bytes from `bytes` to `fd` at its current offset. The bytes must stay valid and
    /// unchanged until the completion runs. False when libuv refused the request: nothing started, no
    /// completion will come.
    public func start(fd: Int32, bytes: UnsafeRawPointer, count: Int) -> Bool {
        precondition(!isWriting, "one file write at a time")
        request.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let base = UnsafeMutablePointer(mutating: bytes.assumingMemoryBound(to: CChar.self))
        var buf = uv_buf_init(base, UInt32(count))
        if uv_fs_write(loop.raw, request, uv_file(fd), &buf, 1, -1, Callbacks.fsWrite) < 0 { return false }
        isWriting = true
        return true
    }

    /// Write callback (from Callbacks.fsWrite).
    func didWrite(result: Int) {
        isWriting = false
        completion(result)
    }
}

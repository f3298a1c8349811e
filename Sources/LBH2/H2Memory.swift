import CNGHTTP2
import Glibc

/// The allocator one nghttp2 session uses (`nghttp2_session_server_new3`): malloc for everything, except that a
/// block of a page or more allocated while the session is created is page-aligned and remembered, so that an idle
/// connection can give its pages back (`releaseIdlePages`) without nghttp2 freeing anything. Two such blocks exist:
/// - the frame buffer (16 KB or more), which holds only the frame being serialised: once nothing is left to send
///   its bytes are scratch, and pages returned with `MADV_DONTNEED` read back as zeros when nghttp2 writes the next
///   frame into them;
/// - the stream map's table (256 buckets of 16 bytes). An empty bucket is all zeros, so once the last stream is
///   gone the whole table is zeros, and giving back a page of zeros changes nothing nghttp2 can see. Its pages go
///   back only when every byte is checked to be zero.
/// An idle HTTP/2 connection then costs what its session state needs, not 20 KB of buffers. Blocks allocated later
/// (a large header value being decoded, a grown table) are plain malloc's and never touched.
///
/// Loop thread only (the session's). The object outlives the nghttp2 session: `H2Session` deletes the session in
/// its deinit, before its stored properties (this one among them) go.
final class H2Memory {
    static let largeBlock = 16 * 1024
    static let pageSize = 4096

    /// The remembered blocks: the session's own, from its creation (and their reallocations). A `scratch` block
    /// (the frame buffer) is released whenever the session is idle; any other only while all its bytes are zero.
    private var blocks: [(pointer: UnsafeMutableRawPointer, size: Int, scratch: Bool)] = []
    /// The session exists: large blocks allocated from now on are not remembered.
    private var sealed = false

    /// The table nghttp2 copies at session creation; `mem_user_data` is this object, unretained.
    func table() -> nghttp2_mem {
        nghttp2_mem(
            mem_user_data: Unmanaged.passUnretained(self).toOpaque(), malloc: H2Callbacks.memMalloc,
            free: H2Callbacks.memFree, calloc: H2Callbacks.memCalloc, realloc: H2Callbacks.memRealloc)
    }

    /// The session was created: what it allocated so far is its for life.
    func seal() { sealed = true }

    /// Hands the pages of the remembered blocks back to the kernel; the bytes released. Only while the session
    /// has nothing to send (its frame buffer holds no frame).
    func releaseIdlePages() -> Int {
        var released = 0
        for b in blocks where b.scratch || Self.allZero(b.pointer, b.size) {
            if madvise(b.pointer, b.size, MADV_DONTNEED) == 0 { released += b.size }
        }
        return released
    }

    /// Whether `size` bytes (a multiple of 8, page-aligned) are all zero. Reading pages already given back maps
    /// the kernel's shared zero page, which adds nothing to the process's resident memory.
    private static func allZero(_ pointer: UnsafeMutableRawPointer, _ size: Int) -> Bool {
        let words = UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: UInt64.self), count: size / 8)
        var any: UInt64 = 0
        for w in words { any |= w }
        return any == 0
    }

    /// Blocks of a page or more, while the session is being created.
    private func remembers(_ size: Int) -> Bool { size >= Self.pageSize && !sealed }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        remembers(size) ? allocateRemembered(size) : malloc(size)
    }

    /// `scratch` by default for the frame buffer's size (16 KB or more).
    private func allocateRemembered(_ size: Int, scratch: Bool? = nil) -> UnsafeMutableRawPointer? {
        let scratch = scratch ?? (size >= Self.largeBlock)
        let rounded = (size + Self.pageSize - 1) & ~(Self.pageSize - 1)
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, Self.pageSize, rounded) == 0, let pointer else { return nil }
        blocks.append((pointer, rounded, scratch))
        return pointer
    }

    func release(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        if !blocks.isEmpty, let i = blocks.firstIndex(where: { $0.pointer == pointer }) { blocks.remove(at: i) }
        free(pointer)
    }

    func allocateZeroed(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
        let total = count.multipliedReportingOverflow(by: size)
        if total.overflow { return nil }
        guard remembers(total.partialValue) else { return calloc(count, size) }
        let pointer = allocateRemembered(total.partialValue)
        pointer?.initializeMemory(as: UInt8.self, repeating: 0, count: total.partialValue)
        return pointer
    }

    func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(size) }
        guard !blocks.isEmpty, let tracked = blocks.first(where: { $0.pointer == pointer }) else {
            return realloc(pointer, size)
        }
        // A remembered block grows (the frame buffer, for a larger frame): it stays remembered, at its new size.
        guard let moved = allocateRemembered(max(size, 1), scratch: tracked.scratch) else { return nil }
        moved.copyMemory(from: pointer, byteCount: min(tracked.size, size))
        release(pointer)
        return moved
    }
}

import CNGHTTP2

// Every C callback nghttp2 calls lives in this file. Each one is capture-free, recovers its `H2Session` from
// `user_data` without retaining it, and calls one named Swift method. They run only inside
// `nghttp2_session_mem_recv` / `nghttp2_session_mem_send`, which only the session calls, on its thread; the
// session owns the nghttp2 session and frees it in its deinit, so it is alive whenever a callback runs.

@inline(__always)
private func session(_ userData: UnsafeMutableRawPointer?) -> H2Session {
    Unmanaged<H2Session>.fromOpaque(userData!).takeUnretainedValue()
}

enum H2Callbacks {
    /// A HEADERS frame begins (request headers, or trailers). Returns 0 (a refusal is submitted, not returned).
    static let beginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
        session(userData).beginHeaders(frame!)
    }

    /// One decoded header field of the frame being received. Returns 0.
    static let header: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
        session(userData).header(
            frame!, name: UnsafeRawBufferPointer(start: name, count: nameLength),
            value: UnsafeRawBufferPointer(start: value, count: valueLength))
    }

    /// A complete frame was received (after its header block, for HEADERS). Returns 0.
    static let frameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
        session(userData).frameReceived(frame!)
    }

    /// DATA payload bytes of a stream. Returns 0.
    static let dataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
        session(userData).dataChunk(streamID, UnsafeRawBufferPointer(start: data, count: length))
    }

    /// A stream closed (both ends, or a reset either way). Returns 0.
    static let streamClosed: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
        session(userData).streamClosed(streamID, errorCode: errorCode)
    }

    /// A frame was serialised for sending: GOAWAY and RST_STREAM are counted. Returns 0.
    static let frameSent: nghttp2_on_frame_send_callback = { _, frame, userData in
        session(userData).frameSent(frame!)
    }

    /// Response body bytes for a stream's DATA frames: a count (with the EOF flag at the end), or
    /// NGHTTP2_ERR_DEFERRED while none is buffered yet.
    static let readData: nghttp2_data_source_read_callback = { _, streamID, buf, length, flags, _, userData in
        session(userData).readData(streamID, into: UnsafeMutableRawBufferPointer(start: buf, count: length), flags: flags!)
    }

    // The session's allocator (`H2Memory`): `mem_user_data` is the session's `H2Memory`, unretained.

    static let memMalloc: nghttp2_malloc = { size, user in memory(user).allocate(size) }
    static let memFree: nghttp2_free = { pointer, user in memory(user).release(pointer) }
    static let memCalloc: nghttp2_calloc = { count, size, user in memory(user).allocateZeroed(count, size) }
    static let memRealloc: nghttp2_realloc = { pointer, size, user in memory(user).reallocate(pointer, size) }
}

@inline(__always)
private func memory(_ userData: UnsafeMutableRawPointer?) -> H2Memory {
    Unmanaged<H2Memory>.fromOpaque(userData!).takeUnretainedValue()
}

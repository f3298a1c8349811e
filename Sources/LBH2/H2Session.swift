import CNGHTTP2

/// What an `H2Session` reports, from inside `receive` or `send` (never re-entered: the delegate must not call
/// `receive` or `send` from these methods; submitting, resuming and consuming are fine).
public protocol H2SessionDelegate: AnyObject {
    /// A request's HEADERS frame opens stream `id`. Returning false refuses it (reset with REFUSED_STREAM). nghttp2
    /// still decodes the refused HEADERS' block (the HPACK state is the connection's) and reports its fields to
    /// `h2Header`, which must ignore them; nothing else is reported for a refused stream but its close.
    func h2StreamOpened(_ id: Int32) -> Bool
    /// One request header field (pseudo-headers first), in order; trailer fields are not reported.
    func h2Header(_ id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    /// The request's header block is complete; `endStream`: no body follows.
    func h2HeadersComplete(_ id: Int32, endStream: Bool)
    /// Request body bytes. They count against the flow-control windows until `consume(_:_:)` is called.
    func h2Data(_ id: Int32, _ bytes: UnsafeRawBufferPointer)
    /// The request ended (END_STREAM on DATA or on trailers).
    func h2RequestEnded(_ id: Int32)
    /// The stream is closed, cleanly (`errorCode` 0) or reset either way.
    func h2StreamClosed(_ id: Int32, errorCode: UInt32)
    /// Any frame received (for the flood counters): its type, stream, payload length and flags.
    func h2FrameReceived(type: UInt8, streamID: Int32, length: Int, flags: UInt8)
    /// A RST_STREAM or GOAWAY went out with `errorCode`.
    func h2ControlSent(type: UInt8, streamID: Int32, errorCode: UInt32)
    /// Copies response body bytes of stream `id` into `buffer`: how many, and whether the body ends there;
    /// nil when none is buffered yet (the stream's DATA waits until `resume(_:)`).
    func h2ReadBody(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)?
    /// Trailer fields for stream `id`, asked once as `h2ReadBody` reports the end of its body: they go out as a
    /// HEADERS frame after the last DATA, which then does not end the stream. nil or empty: none.
    func h2ResponseTrailers(_ id: Int32) -> H2Fields?
}

/// Header fields to send, in one byte buffer: reused, so a response head allocates nothing once grown.
public struct H2Fields: Sendable {
    /// Names and values; the first `used` bytes are the fields'. The array only grows (its elements are
    /// overwritten, not removed), so a field is two copies through one pointer, without the capacity and
    /// uniqueness checks each `Array.append` makes.
    var bytes: [UInt8] = []
    var used = 0
    /// The first `count` are the fields', as for `bytes`.
    var ranges: [(name: Range<Int>, value: Range<Int>)] = []
    public private(set) var count = 0

    public init() {}

    public mutating func removeAll() {
        used = 0
        count = 0
    }

    /// Appends a field; `lowercasing` lowers the name's ASCII letters (HTTP/2 names are lowercase).
    public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, lowercasing: Bool = false) {
        let n = used, v = used + name.count, end = v + value.count
        if end > bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(end - bytes.count, bytes.count))) }
        bytes.withUnsafeMutableBytes { b in
            let base = b.baseAddress!
            if !name.isEmpty { (base + n).copyMemory(from: name.baseAddress!, byteCount: name.count) }
            if !value.isEmpty { (base + v).copyMemory(from: value.baseAddress!, byteCount: value.count) }
            if lowercasing {
                for i in n..<v {
                    let c = b[i]
                    if c &- 0x41 < 26 { b[i] = c | 0x20 }
                }
            }
        }
        used = end
        if count < ranges.count {
            ranges[count] = (n..<v, v..<end)
        } else {
            ranges.append((n..<v, v..<end))
        }
        count += 1
    }

    public mutating func append(_ name: StaticString, _ value: StaticString) {
        name.withUTF8Buffer { n in value.withUTF8Buffer { v in append(name: UnsafeRawBufferPointer(n), value: UnsafeRawBufferPointer(v)) } }
    }

    public mutating func append(_ name: StaticString, decimal: Int) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var i = d.count
            var rest = decimal < 0 ? 0 : decimal
            repeat {
                i -= 1
                d[i] = UInt8(0x30 + rest % 10)
                rest /= 10
            } while rest > 0
            let text = UnsafeRawBufferPointer(rebasing: d[i...])
            name.withUTF8Buffer { n in append(name: UnsafeRawBufferPointer(n), value: text) }
        }
    }
}

/// The server side of one HTTP/2 connection as a sans-I/O value: feed it the client's bytes with `receive`,
/// take the bytes to send with `send`. nghttp2 does the framing, HPACK and the protocol's own checks; streams,
/// flow-control credit and responses are the delegate's. Windows are never opened automatically: the delegate
/// calls `consume` once the bytes it was given have moved on, so a client can make lb hold no more than the
/// windows advertised here.
///
/// Not thread-safe: one connection's, on its loop thread. The delegate is unowned and must outlive the session.
public final class H2Session {
    public struct Settings: Sendable, Equatable {
        /// SETTINGS_MAX_CONCURRENT_STREAMS.
        public var maxConcurrentStreams: Int
        /// SETTINGS_INITIAL_WINDOW_SIZE: what one stream may send before lb consumes it.
        public var streamWindow: Int
        /// The connection window: what all streams together may send before lb consumes it.
        public var connectionWindow: Int
        /// SETTINGS_MAX_HEADER_LIST_SIZE (advisory for the client; the request head limits are enforced anyway).
        public var maxHeaderListSize: Int
        /// nghttp2's RST_STREAM token bucket: `resetBurst` tokens, `resetRate` more per second; a reset without
        /// a token ends the connection.
        public var resetBurst: UInt64
        public var resetRate: UInt64
        /// CONTINUATION frames allowed after one HEADERS.
        public var maxContinuations: Int

        public init(
            maxConcurrentStreams: Int = 100, streamWindow: Int = 256 * 1024, connectionWindow: Int = 1 << 20,
            maxHeaderListSize: Int = 65536, resetBurst: UInt64 = 200, resetRate: UInt64 = 33, maxContinuations: Int = 8
        ) {
            self.maxConcurrentStreams = maxConcurrentStreams
            self.streamWindow = streamWindow
            self.connectionWindow = connectionWindow
            self.maxHeaderListSize = maxHeaderListSize
            self.resetBurst = resetBurst
            self.resetRate = resetRate
            self.maxContinuations = maxContinuations
        }
    }

    public struct Failure: Error, Sendable {
        public let code: Int32
        public var description: String { String(cString: nghttp2_strerror(code)) }
        /// A header block went on past the CONTINUATION cap.
        public var isContinuationFlood: Bool { code == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue }
    }

    /// The 24 bytes an HTTP/2 client sends first (RFC 9113 §3.4).
    public static let preface: [UInt8] = Array(
        UnsafeRawBufferPointer(start: lb_nghttp2_client_magic(), count: lb_nghttp2_client_magic_len()))

    // Frame types and error codes, for the delegate.
    public static let frameData = UInt8(NGHTTP2_DATA.rawValue)
    public static let frameHeaders = UInt8(NGHTTP2_HEADERS.rawValue)
    public static let framePriority = UInt8(NGHTTP2_PRIORITY.rawValue)
    public static let frameRSTStream = UInt8(NGHTTP2_RST_STREAM.rawValue)
    public static let frameSettings = UInt8(NGHTTP2_SETTINGS.rawValue)
    public static let framePing = UInt8(NGHTTP2_PING.rawValue)
    public static let frameGoaway = UInt8(NGHTTP2_GOAWAY.rawValue)
    public static let frameWindowUpdate = UInt8(NGHTTP2_WINDOW_UPDATE.rawValue)
    public static let frameContinuation = UInt8(NGHTTP2_CONTINUATION.rawValue)
    public static let flagEndStream = UInt8(NGHTTP2_FLAG_END_STREAM.rawValue)
    public static let flagAck = UInt8(NGHTTP2_FLAG_ACK.rawValue)
    public static let noError = NGHTTP2_NO_ERROR.rawValue
    public static let protocolError = NGHTTP2_PROTOCOL_ERROR.rawValue
    public static let internalError = NGHTTP2_INTERNAL_ERROR.rawValue
    public static let refusedStream = NGHTTP2_REFUSED_STREAM.rawValue
    public static let cancel = NGHTTP2_CANCEL.rawValue
    public static let enhanceYourCalm = NGHTTP2_ENHANCE_YOUR_CALM.rawValue

    private var session: OpaquePointer?
    private unowned(unsafe) let delegate: H2SessionDelegate
    /// The session's allocator; declared after `session`, it outlives the nghttp2 session deleted in deinit.
    private let memory = H2Memory()
    /// The request stream whose trailer block being decoded holds a field HTTP/2 forbids there; 0: none.
    private var malformedTrailers: Int32 = 0

    /// Creates the session and queues lb's SETTINGS and connection window (sent by the first `send`).
    public init(delegate: H2SessionDelegate, settings: Settings) throws(Failure) {
        self.delegate = delegate
        var callbacks: OpaquePointer?
        var rv = nghttp2_session_callbacks_new(&callbacks)
        guard rv == 0 else { throw Failure(code: rv) }
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, H2Callbacks.beginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, H2Callbacks.header)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, H2Callbacks.frameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, H2Callbacks.dataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, H2Callbacks.streamClosed)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, H2Callbacks.frameSent)
        var option: OpaquePointer?
        rv = nghttp2_option_new(&option)
        guard rv == 0 else { throw Failure(code: rv) }
        defer { nghttp2_option_del(option) }
        // Flow control is lb's: windows open only as far as the bytes moved on (see `consume`).
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_stream_reset_rate_limit(option, settings.resetBurst, settings.resetRate)
        nghttp2_option_set_max_continuations(option, settings.maxContinuations)
        // Streams are scheduled round-robin (RFC 9218's default): lb forwards requests, it does not order them
        // by a client's RFC 7540 dependency tree, which nghttp2 would otherwise keep for every stream, closed
        // ones included. Clients are told so with SETTINGS_NO_RFC7540_PRIORITIES below.
        nghttp2_option_set_no_closed_streams(option, 1)
        // The request is validated once, by lb (`H2RequestHead`: pseudo-headers, names, CR/LF/NUL in values,
        // connection-specific fields, te; `H2Stream`: content-length against DATA), then parsed again as
        // HTTP/1.1 before it is forwarded: nghttp2's own HTTP checks would be a third pass over every field.
        nghttp2_option_set_no_http_messaging(option, 1)
        var mem = memory.table()
        rv = nghttp2_session_server_new3(
            &session, callbacks, Unmanaged.passUnretained(self).toOpaque(), option, &mem)
        memory.seal()
        guard rv == 0 else { throw Failure(code: rv) }
        var entries = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: UInt32(settings.maxConcurrentStreams)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(settings.streamWindow)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(settings.maxHeaderListSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue), value: 1),
        ]
        rv = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        guard rv == 0 else { throw Failure(code: rv) }
        rv = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(settings.connectionWindow))
        guard rv == 0 else { throw Failure(code: rv) }
    }

    deinit { nghttp2_session_del(session) }

    /// The connection is idle (no stream, nothing to send): the pages of nghttp2's frame buffer go back to the
    /// kernel (`H2Memory`); the bytes released.
    public func releaseIdlePages() -> Int {
        if wantsWrite { return 0 }
        return memory.releaseIdlePages()
    }

    // MARK: bytes in and out

    /// Processes the client's bytes. On a failure the connection is over: whatever nghttp2 queued (a GOAWAY)
    /// is still taken by `send`, then the connection closes.
    public func receive(_ bytes: UnsafeRawBufferPointer) -> Failure? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
        let n = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        return n < 0 ? Failure(code: Int32(n)) : nil
    }

    /// Appends frames to send to `out` until nothing is ready or `out` holds `limit` bytes.
    public func send(into out: inout [UInt8], limit: Int) -> Failure? {
        while out.count < limit {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { return Failure(code: Int32(n)) }
            if n == 0 { return nil }
            out.append(contentsOf: UnsafeBufferPointer(start: data, count: n))
        }
        return nil
    }

    public var wantsRead: Bool { nghttp2_session_want_read(session) != 0 }
    public var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    // MARK: submitting

    /// The response head for stream `id`: `:status` then `fields`. With `body`, DATA follows as
    /// `h2ReadBody` provides it; without, the head ends the stream. Returns false when the stream is gone.
    @discardableResult
    public func submitResponse(_ id: Int32, status: Int, fields: H2Fields, body: Bool) -> Bool {
        var statusText: (UInt8, UInt8, UInt8) = (
            UInt8(0x30 + status / 100 % 10), UInt8(0x30 + status / 10 % 10), UInt8(0x30 + status % 10)
        )
        let count = fields.count + 1
        return withUnsafeMutableBytes(of: &statusText) { statusBytes in
            fields.bytes.withUnsafeBytes { raw in
                withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: count) { nva in
                    let base = UnsafeMutablePointer(mutating: raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
                    let statusName: StaticString = ":status"
                    nva[0] = nghttp2_nv(
                        name: UnsafeMutablePointer(mutating: statusName.utf8Start), value: statusBytes.baseAddress!
                            .assumingMemoryBound(to: UInt8.self), namelen: 7, valuelen: 3,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                    for i in 0..<fields.count {
                        let f = fields.ranges[i]
                        nva[i + 1] = nghttp2_nv(
                            name: base! + f.name.lowerBound, value: base! + f.value.lowerBound,
                            namelen: f.name.count, valuelen: f.value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                    }
                    var provider = nghttp2_data_provider(
                        source: nghttp2_data_source(ptr: nil), read_callback: H2Callbacks.readData)
                    let rv = body
                        ? nghttp2_submit_response(session, id, nva.baseAddress, count, &provider)
                        : nghttp2_submit_response(session, id, nva.baseAddress, count, nil)
                    return rv == 0
                }
            }
        }
    }

    /// An informational (1xx) response head on stream `id`, before its final response (RFC 9113 §8.1).
    public func submitInformational(_ id: Int32, status: Int) {
        var statusText: (UInt8, UInt8, UInt8) = (
            UInt8(0x30 + status / 100 % 10), UInt8(0x30 + status / 10 % 10), UInt8(0x30 + status % 10)
        )
        let statusName: StaticString = ":status"
        withUnsafeMutableBytes(of: &statusText) { value in
            var nv = nghttp2_nv(
                name: UnsafeMutablePointer(mutating: statusName.utf8Start),
                value: value.baseAddress!.assumingMemoryBound(to: UInt8.self), namelen: 7, valuelen: 3,
                flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            _ = nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, nil, &nv, 1, nil)
        }
    }

    /// Resets stream `id` with `errorCode`.
    public func reset(_ id: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, errorCode)
    }

    /// GOAWAY naming the last stream lb processed: streams up to it finish, no new one starts.
    public func goAway(errorCode: UInt32) {
        _ = nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session), errorCode,
            nil, 0)
    }

    /// GOAWAY, and no stream goes on: the connection ends once it is sent.
    public func terminate(errorCode: UInt32) {
        _ = nghttp2_session_terminate_session(session, errorCode)
    }

    /// Body bytes for stream `id` are buffered again: its deferred DATA may go on.
    public func resume(_ id: Int32) { _ = nghttp2_session_resume_data(session, id) }

    /// `count` request bytes of stream `id` moved on: the stream's and the connection's windows open by that much.
    public func consume(_ id: Int32, _ count: Int) {
        guard count > 0 else { return }
        if nghttp2_session_consume(session, id, count) != 0 {
            // The stream is gone: the connection's window still gets its share.
            _ = nghttp2_session_consume_connection(session, count)
        }
    }

    /// What stream `id` may still send to the client now (its window, capped by the connection's).
    public func sendWindow(_ id: Int32) -> Int {
        Int(min(nghttp2_session_get_stream_remote_window_size(session, id), nghttp2_session_get_remote_window_size(session)))
    }

    // MARK: from the callbacks (H2Callbacks)

    func beginHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let f = frame.pointee
        guard f.hd.type == Self.frameHeaders, f.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
        if !delegate.h2StreamOpened(f.hd.stream_id) {
            _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), f.hd.stream_id, Self.refusedStream)
        }
        return 0
    }

    func header(_ frame: UnsafePointer<nghttp2_frame>, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Int32 {
        // Read in place through the HEADERS member (every member of the union starts with the frame header):
        // the frame is a large union, not copied once per header field.
        let headers = UnsafeRawPointer(frame).assumingMemoryBound(to: nghttp2_headers.self)
        if headers.pointee.hd.type == Self.frameHeaders && headers.pointee.cat == NGHTTP2_HCAT_REQUEST {
            delegate.h2Header(headers.pointee.hd.stream_id, name: name, value: value)
        } else if headers.pointee.hd.type == Self.frameHeaders && !Self.isValidTrailerField(name: name, value: value) {
            malformedTrailers = headers.pointee.hd.stream_id
        }
        return 0
    }

    /// A field a request's trailers may carry (RFC 9113 §8.1, §8.2): a lowercase token name (so no
    /// pseudo-header), not connection-specific, `te` only as `trailers`, and a value without NUL, CR or LF that
    /// does not start or end with SP or HTAB. nghttp2's own HTTP checks are off: lb validates requests itself.
    static func isValidTrailerField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard !name.isEmpty else { return false }
        for b in name {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): continue
            case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
                UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                continue
            default: return false
            }
        }
        for b in value where b == 0 || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n") { return false }
        if let first = value.first, let last = value.last,
            first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") || last == UInt8(ascii: " ")
                || last == UInt8(ascii: "\t")
        {
            return false
        }
        func named(_ literal: StaticString) -> Bool {
            literal.withUTF8Buffer { $0.count == name.count && $0.elementsEqual(name) }
        }
        if named("te") { return value.elementsEqual("trailers".utf8) }
        return !(named("connection") || named("keep-alive") || named("proxy-connection")
            || named("transfer-encoding") || named("upgrade"))
    }

    func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        delegate.h2FrameReceived(type: hd.type, streamID: hd.stream_id, length: hd.length, flags: hd.flags)
        let ended = hd.flags & Self.flagEndStream != 0
        switch hd.type {
        case Self.frameHeaders:
            if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
                delegate.h2HeadersComplete(hd.stream_id, endStream: ended)
            } else if !ended || malformedTrailers == hd.stream_id {
                // RFC 9113 §8.1: trailers end the stream and carry no pseudo-header or forbidden field; else
                // the request is malformed and never completed upstream.
                malformedTrailers = 0
                reset(hd.stream_id, errorCode: Self.protocolError)
            } else {
                delegate.h2RequestEnded(hd.stream_id)  // trailers: dropped, but they end the request
            }
        case Self.frameData:
            if ended { delegate.h2RequestEnded(hd.stream_id) }
        default:
            break
        }
        return 0
    }

    func dataChunk(_ id: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        delegate.h2Data(id, bytes)
        return 0
    }

    func streamClosed(_ id: Int32, errorCode: UInt32) -> Int32 {
        delegate.h2StreamClosed(id, errorCode: errorCode)
        return 0
    }

    func frameSent(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        switch hd.type {
        case Self.frameRSTStream:
            delegate.h2ControlSent(type: hd.type, streamID: hd.stream_id, errorCode: frame.pointee.rst_stream.error_code)
        case Self.frameGoaway:
            delegate.h2ControlSent(type: hd.type, streamID: hd.stream_id, errorCode: frame.pointee.goaway.error_code)
        default:
            break
        }
        return 0
    }

    func readData(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let (count, end) = delegate.h2ReadBody(id, into: buffer) else { return Int(NGHTTP2_ERR_DEFERRED.rawValue) }
        if end {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            // RFC 9113 §8.1: trailers are a HEADERS frame after the last DATA, and that HEADERS ends the stream.
            if let trailers = delegate.h2ResponseTrailers(id), trailers.count > 0, submitTrailers(id, trailers) {
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            }
        }
        return count
    }

    /// Queues `fields` (not empty) as stream `id`'s trailing HEADERS; nghttp2 copies them. False when refused.
    private func submitTrailers(_ id: Int32, _ fields: H2Fields) -> Bool {
        fields.bytes.withUnsafeBytes { raw in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: fields.count) { nva in
                let base = UnsafeMutablePointer(mutating: raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
                for (i, f) in fields.ranges.enumerated() {
                    nva[i] = nghttp2_nv(
                        name: base + f.name.lowerBound, value: base + f.value.lowerBound, namelen: f.name.count,
                        valuelen: f.value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                }
                return nghttp2_submit_trailer(session, id, nva.baseAddress, fields.count) == 0
            }
        }
    }
}

import LBHTTP
import LBUV
#if canImport(Glibc)
import Glibc
#endif

/// One line per request, formatted straight into bytes (no String per request) and written without blocking
/// the loop: lines accumulate in `pending`; `flush()` hands them to a `FileWrite` (libuv's thread pool)
/// (one write in flight, double-buffered), every 200 ms and whenever 64 KiB are waiting. `close()` writes
/// what is left synchronously at exit. Loop thread only.
final class AccessLog {
    enum Format { case common, json }

    struct Entry {
        var status: Int
        var bytes: UInt64
        var retries: Int
        var connectNanos: UInt64?
        var responseNanos: UInt64?
        var totalNanos: UInt64
        var cause: TerminationCause
    }

    let format: Format
    private let fd: Int32
    private let ownsFD: Bool
    private var pending: [UInt8] = []
    private var writing: UnsafeMutableRawPointer?
    private var writingCapacity = 0
    private var writingCount = 0
    private var fileWrite: FileWrite!
    private var isWriting: Bool { fileWrite.isWriting }
    private var isClosing = false
    private var timer: LoopTimer?
    private var clock = ClockCache()
    /// Lines lost because the destination failed (counted, never retried).
    private(set) var writeErrors: UInt64 = 0

    /// `path` "-" is standard output; anything else is opened for appending (created 0644).
    init(loop: EventLoop, format: Format, path: String) throws(SetupError) {
        self.format = format
        if path == "-" {
            fd = 1
            ownsFD = false
        } else {
            let f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            if f < 0 { throw SetupError("access_log.path: cannot open \"\(path)\": \(String(cString: strerror(errno)))") }
            fd = f
            ownsFD = true
        }
        pending.reserveCapacity(16 * 1024)
        fileWrite = FileWrite(loop: loop) { [unowned self] result in self.didWrite(result: result) }
        let t = LoopTimer(loop: loop) { [unowned self] in self.flush() }
        t.start(timeout: 200, repeat: 200)
        t.unref()
        timer = t
    }

    deinit {
        writing?.deallocate()
    }

    // MARK: formatting

    /// Appends one line for a request whose head is `head`, from `client`, served by `server` (nil: none).
    /// A nil head is a request rejected before its head was complete: its request line is logged as "-"
    /// (common) or its method and path as null (json). `tls` is the connection's `tlsFields(...)`, nil on
    /// plain HTTP. `http2`: the request came as an HTTP/2 stream (logged as `HTTP/2.0`).
    func log(
        _ head: HTTPHead?, client: UnsafeRawBufferPointer, server: String?, tls: [UInt8]? = nil, http2: Bool = false,
        entry: Entry
    ) {
        clock.refresh()
        switch format {
        case .common: common(head, client: client, server: server, http2: http2, entry)
        case .json: json(head, client: client, server: server, http2: http2, entry)
        }
        // The line's TLS fields come last, before the line's end.
        if let tls { pending.append(contentsOf: tls) }
        append(format == .json ? "}\n" : "\n")
        if pending.count >= 64 * 1024 { flush() }
    }

    /// What a TLS connection's lines carry, formatted once per connection: ` tls=TLSv1.3
    /// cipher=TLS_AES_128_GCM_SHA256 sni=a.test` (common; `sni=-` without one), or
    /// `,"tls":{"version":"TLSv1.3","cipher":"...","sni":"a.test"}` (json; `"sni":null`). The client's server
    /// name is escaped (JSON) or has spaces and control bytes replaced by `?` (common).
    func tlsFields(version: String, cipher: String, serverName: String?) -> [UInt8] {
        let saved = pending
        pending = []
        defer { pending = saved }
        switch format {
        case .common:
            append(" tls=")
            pending.append(contentsOf: version.utf8)
            append(" cipher=")
            pending.append(contentsOf: cipher.utf8)
            append(" sni=")
            if let serverName {
                for b in serverName.utf8 { pending.append(b <= 0x20 || b >= 0x7F ? UInt8(ascii: "?") : b) }
            } else {
                append("-")
            }
        case .json:
            append(",\"tls\":{\"version\":\"")
            pending.append(contentsOf: version.utf8)
            append("\",\"cipher\":\"")
            pending.append(contentsOf: cipher.utf8)
            append("\",\"sni\":")
            appendJSONString(serverName)
            append("}")
        }
        return pending
    }

    /// The common-format line without its end (`log` adds the TLS fields, then the newline).
    private func common(_ head: HTTPHead?, client: UnsafeRawBufferPointer, server: String?, http2: Bool, _ e: Entry) {
        if client.isEmpty { pending.append(UInt8(ascii: "-")) } else { pending.append(contentsOf: client) }
        append(" - - [")
        pending.append(contentsOf: clock.common)
        append("] \"")
        if let head {
            pending.append(contentsOf: head.bytes[head.methodRange])
            pending.append(UInt8(ascii: " "))
            appendEscapedTarget(head, quoteForJSON: false)
            append(http2 ? " HTTP/2.0\" " : head.versionMinor == 0 ? " HTTP/1.0\" " : " HTTP/1.1\" ")
        } else {
            append("-\" ")
        }
        HeadWriter.appendDecimal(e.status, &pending)
        pending.append(UInt8(ascii: " "))
        HeadWriter.appendDecimal(Int(e.bytes), &pending)
        append(" server=")
        if let server { pending.append(contentsOf: server.utf8) } else { pending.append(UInt8(ascii: "-")) }
        append(" retries=")
        HeadWriter.appendDecimal(e.retries, &pending)
        append(" connect_ms=")
        appendMillis(e.connectNanos)
        append(" response_ms=")
        appendMillis(e.responseNanos)
        append(" total_ms=")
        appendMillis(e.totalNanos)
        append(" cause=")
        append(e.cause.name)
    }

    /// The JSON object without its closing brace (`log` adds the TLS fields, then `}` and the newline).
    private func json(_ head: HTTPHead?, client: UnsafeRawBufferPointer, server: String?, http2: Bool, _ e: Entry) {
        append("{\"time\":\"")
        pending.append(contentsOf: clock.iso)
        append("\",\"client\":\"")
        pending.append(contentsOf: client)
        if let head {
            append("\",\"method\":\"")
            pending.append(contentsOf: head.bytes[head.methodRange])
            append("\",\"path\":\"")
            appendEscapedTarget(head, quoteForJSON: true)
            append(http2 ? "\",\"protocol\":\"HTTP/2.0\"" : head.versionMinor == 0 ? "\",\"protocol\":\"HTTP/1.0\"" : "\",\"protocol\":\"HTTP/1.1\"")
            append(",\"status\":")
        } else {
            append("\",\"method\":null,\"path\":null,\"status\":")
        }
        HeadWriter.appendDecimal(e.status, &pending)
        append(",\"bytes\":")
        HeadWriter.appendDecimal(Int(e.bytes), &pending)
        append(",\"server\":")
        appendJSONString(server)
        append(",\"retries\":")
        HeadWriter.appendDecimal(e.retries, &pending)
        append(",\"connect_ms\":")
        if e.connectNanos == nil { append("null") } else { appendMillis(e.connectNanos) }
        append(",\"response_ms\":")
        if e.responseNanos == nil { append("null") } else { appendMillis(e.responseNanos) }
        append(",\"total_ms\":")
        appendMillis(e.totalNanos)
        append(",\"cause\":\"")
        append(e.cause.name)
        append("\"")
    }

    @inline(__always)
    private func append(_ s: StaticString) { HeadWriter.append(s, &pending) }

    /// Milliseconds with three decimals ("12.345"); "-" when unknown.
    private func appendMillis(_ nanos: UInt64?) {
        guard let nanos else {
            pending.append(UInt8(ascii: "-"))
            return
        }
        let micros = nanos / 1000
        HeadWriter.appendDecimal(Int(micros / 1000), &pending)
        pending.append(UInt8(ascii: "."))
        let frac = micros % 1000
        pending.append(UInt8(ascii: "0") + UInt8(frac / 100))
        pending.append(UInt8(ascii: "0") + UInt8(frac / 10 % 10))
        pending.append(UInt8(ascii: "0") + UInt8(frac % 10))
    }

    /// The request-target; in JSON, `"`, `\` and bytes outside printable ASCII are escaped.
    private func appendEscapedTarget(_ head: HTTPHead, quoteForJSON: Bool) {
        for i in head.target {
            let b = head.bytes[i]
            if quoteForJSON { appendJSONByte(b) } else { pending.append(b) }
        }
    }

    /// `"text"`, escaped, or `null`.
    private func appendJSONString(_ text: String?) {
        guard let text else {
            append("null")
            return
        }
        pending.append(UInt8(ascii: "\""))
        for b in text.utf8 { appendJSONByte(b) }
        pending.append(UInt8(ascii: "\""))
    }

    private func appendJSONByte(_ b: UInt8) {
        if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
            pending.append(UInt8(ascii: "\\"))
            pending.append(b)
        } else if b < 0x20 || b >= 0x7F {
            append("\\u00")
            pending.append(HeadWriter.hexDigit(b >> 4))
            pending.append(HeadWriter.hexDigit(b & 15))
        } else {
            pending.append(b)
        }
    }

    // MARK: writing

    /// Starts an asynchronous write of everything pending (if none is in flight).
    func flush() {
        guard !isWriting, !pending.isEmpty else { return }
        if writingCapacity < pending.count {
            writing?.deallocate()
            writingCapacity = max(pending.count, 64 * 1024)
            writing = .allocate(byteCount: writingCapacity, alignment: 16)
        }
        pending.withUnsafeBytes { writing!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        writingCount = pending.count
        pending.removeAll(keepingCapacity: true)
        if !fileWrite.start(fd: fd, bytes: writing!, count: writingCount) { writeErrors &+= 1 }
    }

    /// Write completion (thread pool → loop thread). Short writes are finished synchronously: rare, and small.
    private func didWrite(result: Int) {
        if result < 0 {
            writeErrors &+= 1
        } else if result < writingCount {
            writeAllBlocking(writing! + result, writingCount - result)
        }
        writingCount = 0
        if isClosing { finishAtExit() }
    }

    /// At exit: stop the timer, write everything left (blocking is fine now), close the file.
    func close() {
        guard !isClosing else { return }
        isClosing = true
        timer?.close()
        timer = nil
        if isWriting { return }  // the write's callback runs before the loop ends and finishes there
        finishAtExit()
    }

    func finishAtExit() {
        pending.withUnsafeBytes { raw in
            if raw.count > 0 { writeAllBlocking(UnsafeMutableRawPointer(mutating: raw.baseAddress!), raw.count) }
        }
        pending.removeAll()
        if ownsFD { Glibc.close(fd) }
    }

    private func writeAllBlocking(_ p: UnsafeMutableRawPointer, _ n: Int) {
        var off = 0
        while off < n {
            let w = write(fd, p + off, n - off)
            if w <= 0 {
                if errno == EINTR { continue }
                writeErrors &+= 1
                return
            }
            off += w
        }
    }
}

/// The current time formatted once per second for both log formats.
struct ClockCache {
    private var second: Int = -1
    private(set) var common: [UInt8] = []
    private(set) var iso: [UInt8] = []

    mutating func refresh() {
        var tv = timeval()
        gettimeofday(&tv, nil)
        let ms = Int(tv.tv_usec / 1000)
        if tv.tv_sec != second {
            second = tv.tv_sec
            var t = tv.tv_sec
            var tmv = tm()
            gmtime_r(&t, &tmv)
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            let y = Int(tmv.tm_year) + 1900
            common = Array("\(two(tmv.tm_mday))/\(months[Int(tmv.tm_mon)])/\(y):\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)) +0000".utf8)
            iso = Array("\(y)-\(two(tmv.tm_mon + 1))-\(two(tmv.tm_mday))T\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)).000Z".utf8)
        }
        // Milliseconds in the ISO form: ".mmmZ" are the last five bytes.
        let n = iso.count
        iso[n - 4] = UInt8(ascii: "0") + UInt8(ms / 100)
        iso[n - 3] = UInt8(ascii: "0") + UInt8(ms / 10 % 10)
        iso[n - 2] = UInt8(ascii: "0") + UInt8(ms % 10)
    }
}

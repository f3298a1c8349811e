import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking TCP client to 127.0.0.1:port that sends exactly the bytes a test gives it and parses responses
/// strictly, so tests can speak malformed, pipelined or smuggling HTTP/1.1 at the proxy.
///
/// Bytes received beyond one response are kept for the next `readResponse`, so pipelined responses are read one after
/// another. Every read has a deadline (`timeout`, overridable per call); SO_RCVTIMEO is set too, as a backstop.
/// The socket is closed by `close()` or when the object is released. Not thread-safe: one test thread uses it.
final class RawHTTPConnection {
    let port: Int
    /// Default deadline for each read call, in seconds.
    var timeout: TimeInterval
    private var fd: Int32
    /// Received but not yet consumed.
    private var buffer: [UInt8] = []
    private var eof = false
    /// True once the peer reset the connection (ECONNRESET) rather than closing it in order.
    private(set) var sawReset = false

    /// Connects to 127.0.0.1:`port`, from `source` if given (see `LoopbackSocket.connect`).
    /// - Throws: `HarnessError.socket` (e.g. ECONNREFUSED).
    init(port: Int, timeout: TimeInterval = 5, source: UInt32? = nil) throws {
        self.port = port
        self.timeout = timeout
        self.fd = try LoopbackSocket.connect(port: port, timeout: timeout, source: source)
    }

    deinit { close() }

    /// The underlying descriptor, for socket options a test needs; -1 once closed.
    var fileDescriptor: Int32 { fd }

    // MARK: Sending

    func send(_ bytes: [UInt8]) throws {
        guard fd >= 0 else { throw HarnessError.socket(call: "send on closed connection", errno: EBADF) }
        try LoopbackSocket.sendAll(fd, bytes)
    }

    /// Sends the UTF-8 bytes of `text` as they are: write `\r\n` yourself.
    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Half-closes: the peer sees EOF on its read side, we can still read.
    func shutdownWrite() { if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) } }

    // MARK: Receiving

    /// Reads one complete response.
    ///
    /// Body framing follows RFC 9112 §6.3: none for `headRequest`, 1xx, 204 and 304; chunked (decoded) if
    /// Transfer-Encoding ends in `chunked` (it wins over Content-Length); until EOF for another Transfer-Encoding or
    /// with neither header; else Content-Length bytes.
    /// - Parameters:
    ///   - headRequest: the request this answers was a HEAD, so there is no body whatever the headers say.
    ///   - skipInterim: skip 1xx interim responses (not 101) and return the final one; if false, return a 1xx
    ///     response by itself and leave the final one for the next call.
    /// - Throws: `HarnessError.timedOut`, `.closedBeforeComplete` (EOF or reset mid-response, or before any byte),
    ///   `.malformedResponse`.
    func readResponse(headRequest: Bool = false, skipInterim: Bool = true, timeout: TimeInterval? = nil) throws
        -> HTTPResponse
    {
        let deadline = Date().addingTimeInterval(timeout ?? self.timeout)
        while true {
            let response = try readOneResponse(headRequest: headRequest, deadline: deadline)
            if response.isInterim && skipInterim { continue }
            return response
        }
    }

    private func readOneResponse(headRequest: Bool, deadline: Date) throws -> HTTPResponse {
        var headEnd = HTTPWire.headEnd(in: buffer)
        while headEnd == nil {
            guard buffer.count < 1 << 20 else { throw malformed("no end of head within 1 MiB") }
            guard try fill(until: deadline, what: "a response head") else {
                throw HarnessError.closedBeforeComplete(partial: buffer)
            }
            headEnd = HTTPWire.headEnd(in: buffer)
        }
        let bodyStart = headEnd!
        let head: (startLine: String, fields: [(String, String)])
        do { head = try HTTPWire.parseHead(buffer[..<bodyStart]) } catch let error as HTTPWire.Malformed {
            throw malformed(error.reason)
        }
        let statusParts = head.startLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/"), statusParts[1].count == 3,
            let status = Int(statusParts[1])
        else { throw malformed("bad status line: \(head.startLine)") }
        var response = HTTPResponse(
            version: String(statusParts[0]), status: status,
            reason: statusParts.count > 2 ? String(statusParts[2]) : "",
            headers: head.fields, body: [], raw: [])

        let end: Int
        let codings = HTTPWire.transferCodings(head.fields)
        if headRequest || (100..<200).contains(status) || status == 204 || status == 304 {
            end = bodyStart
        } else if codings.last == "chunked" {
            end = try readChunked(from: bodyStart, into: &response, deadline: deadline)
        } else if !codings.isEmpty {
            end = try readUntilEOF(deadline: deadline)
        } else {
            let length: Int?
            do { length = try HTTPWire.contentLength(head.fields) } catch let error as HTTPWire.Malformed {
                throw malformed(error.reason)
            }
            if let length {
                while buffer.count < bodyStart + length {
                    guard try fill(until: deadline, what: "\(length) body bytes") else {
                        throw HarnessError.closedBeforeComplete(partial: buffer)
                    }
                }
                end = bodyStart + length
            } else {
                end = try readUntilEOF(deadline: deadline)
            }
        }
        if response.body.isEmpty && end > bodyStart && codings.last != "chunked" {
            response.body = Array(buffer[bodyStart..<end])
        }
        response.raw = Array(buffer[..<end])
        buffer.removeFirst(end)
        return response
    }

    private func readChunked(from start: Int, into response: inout HTTPResponse, deadline: Date) throws -> Int {
        while true {
            let result: HTTPWire.ChunkedResult
            do { result = try HTTPWire.decodeChunked(buffer, from: start) } catch let error as HTTPWire.Malformed {
                throw malformed(error.reason)
            }
            if case .complete(let body, let trailers, let end) = result {
                response.body = body
                response.trailers = trailers
                return end
            }
            guard try fill(until: deadline, what: "the rest of a chunked body") else {
                throw HarnessError.closedBeforeComplete(partial: buffer)
            }
        }
    }

    /// Reads until EOF and returns the buffer's count (a close-delimited body ends where the connection does).
    private func readUntilEOF(deadline: Date) throws -> Int {
        while try fill(until: deadline, what: "EOF ending a close-delimited body") {}
        return buffer.count
    }

    /// True if the peer closes (FIN or reset) within `timeout`. Bytes that arrive meanwhile are kept for later reads.
    func isClosedByPeer(timeout: TimeInterval = 2) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        do {
            while try fill(until: deadline, what: "EOF") {}
            return true
        } catch {
            return false
        }
    }

    /// Every byte up to EOF (including any left over from earlier reads).
    /// - Throws: `HarnessError.timedOut` carrying the bytes received, if the peer does not close in time.
    func readAll(timeout: TimeInterval? = nil) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout ?? self.timeout)
        while try fill(until: deadline, what: "EOF") {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// Raw bytes outside HTTP framing (e.g. in a tunnel after `101`): returns once at least `count` bytes are
    /// buffered, or at EOF with what there is, and consumes them. - Throws: `HarnessError.timedOut`.
    func readRaw(count: Int, timeout: TimeInterval? = nil) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout ?? self.timeout)
        while buffer.count < count, try fill(until: deadline, what: "\(count) raw bytes") {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// Bytes received but not consumed by a `readResponse` (e.g. a surprise extra response).
    var unconsumedBytes: [UInt8] { buffer }

    /// Appends what arrives before `deadline` to the buffer. Returns false at EOF (or reset).
    private func fill(until deadline: Date, what: String) throws -> Bool {
        if eof { return false }
        guard fd >= 0 else { throw HarnessError.socket(call: "read on closed connection", errno: EBADF) }
        switch try LoopbackSocket.read(fd, deadline: deadline) {
        case .data(let bytes):
            buffer += bytes
            return true
        case .closed(let reset):
            eof = true
            sawReset = reset
            return false
        case .timedOut:
            throw HarnessError.timedOut(what: what, partial: buffer)
        }
    }

    private func malformed(_ reason: String) -> HarnessError { .malformedResponse(reason: reason, raw: buffer) }

    // MARK: Closing

    /// Closes the socket. Idempotent.
    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Closes with a TCP reset (SO_LINGER 0) instead of FIN, to simulate a client that aborts. Idempotent.
    func closeWithReset() {
        if fd >= 0 { LoopbackSocket.closeWithReset(fd) }
        fd = -1
    }
}

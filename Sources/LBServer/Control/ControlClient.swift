import CLibUV
import Foundation

/// The blocking side of the control socket, for processes that are not serving yet: `lb-server --upgrade` (the
/// operator's command) and a successor before it accepts. One request at a time; every wait has a deadline.
/// Not thread-safe: one thread at a time uses it (ownership may move between threads).
final class ControlClient {
    let path: String
    private var fd: Int32
    private var lines = ControlLineBuffer()
    /// Descriptors received and not yet handed out with an answer.
    private var received: [Int32] = []

    /// Connects to the control socket at `path`. Throws when nobody answers there, naming the path and reason.
    init(path: String) throws(ControlError) {
        self.path = path
        let fd = lb_unix_connect(path)
        guard fd >= 0 else {
            throw ControlError("cannot reach a running lb-server at control socket \(path): \(String(cString: strerror(-fd)))")
        }
        self.fd = fd
    }

    deinit { close() }

    func close() {
        for d in received { Glibc.close(d) }
        received = []
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends `request` and waits up to `timeout` seconds for its answer. Returns the answer and the descriptors
    /// that came with it (the caller owns them). Throws on a timeout, a closed connection, or an answer with
    /// `"ok": false` (its `error` is the message).
    func request(_ request: [String: Any], timeout: TimeInterval) throws(ControlError) -> (
        reply: [String: Any], descriptors: [Int32]
    ) {
        guard fd >= 0 else { throw ControlError("control connection closed") }
        try send(ControlMessage.encode(request))
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let line = try lines.nextLine() {
                let reply = try ControlMessage.decode(line)
                let descriptors = received
                received = []
                if reply["ok"] as? Bool != true {
                    for d in descriptors { Glibc.close(d) }
                    throw ControlError(reply["error"] as? String ?? "the running lb-server refused without a reason")
                }
                return (reply, descriptors)
            }
            try receive(until: deadline)
        }
    }

    private func send(_ bytes: [UInt8]) throws(ControlError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ControlError("control socket \(path): send failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    private func receive(until deadline: Date) throws(ControlError) {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { throw ControlError("control socket \(path): no answer in time") }
        var tv = timeval(tv_sec: Int(left), tv_usec: Int((left - left.rounded(.down)) * 1_000_000) + 1)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds = [Int32](repeating: -1, count: Int(LB_MAX_PASSED_FDS))
        var count: Int32 = 0
        var truncated: Int32 = 0
        let n = buffer.withUnsafeMutableBytes { raw in
            fds.withUnsafeMutableBufferPointer { f in
                lb_recv_with_fds(fd, raw.baseAddress, raw.count, f.baseAddress, Int32(f.count), &count, &truncated)
            }
        }
        received.append(contentsOf: fds.prefix(Int(count)))
        if truncated != 0 { throw ControlError("control socket \(path): descriptors were lost in transit") }
        if n == 0 { throw ControlError("the running lb-server closed the control connection") }
        if n < 0 {
            if -n == EAGAIN || -n == EWOULDBLOCK || -n == EINTR { return }
            throw ControlError("control socket \(path): receive failed: \(String(cString: strerror(Int32(-n))))")
        }
        lines.append(buffer[..<n])
    }
}

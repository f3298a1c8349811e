import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A stand-in for systemd's notification socket: a Unix datagram socket the test binds, whose path goes to the
/// server as `NOTIFY_SOCKET`; each datagram is one sd_notify message (`KEY=VALUE` lines).
final class FakeNotifySocket: TestResource, @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let received = Locked<[String]>([])

    init() throws {
        path = "/tmp/lb-notify-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.socket(call: "socket(AF_UNIX, SOCK_DGRAM)", errno: errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw HarnessError.socket(call: "bind(\(path))", errno: e)
        }
        var tv = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        TestResources.shared.register(self)
    }

    /// Every message so far, oldest first (reads what is waiting first).
    var messages: [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            let text = String(decoding: buffer[..<n], as: UTF8.self)
            received.withLock { $0.append(text) }
        }
        return received.withLock { $0 }
    }

    /// Waits for a message for which `match` holds, searching from message index `from`; returns its index.
    @discardableResult
    func waitFor(from: Int = 0, timeout: TimeInterval = 10, _ what: String, _ match: @escaping (String) -> Bool)
        throws -> Int
    {
        var index = -1
        try eventually(timeout: timeout, "notification: \(what)") {
            let all = self.messages
            if let i = all.indices.dropFirst(from).first(where: { match(all[$0]) }) {
                index = i
                return true
            }
            return false
        }
        return index
    }

    func cleanUp() {
        Glibc.close(fd)
        unlink(path)
        TestResources.shared.unregister(self)
    }
}

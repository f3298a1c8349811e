import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Thin, blocking wrappers over Glibc sockets on 127.0.0.1, shared by `RawHTTPConnection` and `SpyBackend`.
///
/// Every descriptor is created close-on-exec, so a child process started by the harness never inherits one (an
/// inherited socket would keep a connection open after we close it and break EOF-based assertions).
/// Functions throw `HarnessError.socket` naming the failed call and errno.
enum LoopbackSocket {
    /// A connected TCP socket to 127.0.0.1:`port`, with TCP_NODELAY (so split writes go out as written) and
    /// SO_RCVTIMEO/SO_SNDTIMEO set to `timeout` as a backstop against any blocking call hanging a test.
    /// With `source` (another address of 127.0.0.0/8, e.g. `0x7F00_0002` for 127.0.0.2), the connection comes
    /// from that address: a second client as far as the peer can tell, on one machine.
    static func connect(port: Int, timeout: TimeInterval, source: UInt32? = nil) throws -> Int32 {
        let fd = try makeSocket()
        do {
            try setTimeouts(fd, timeout)
            try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            if let source {
                var local = loopback(port: 0)
                local.sin_addr.s_addr = in_addr_t(source.bigEndian)
                let rc = withUnsafePointer(to: &local) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard rc == 0 else { throw HarnessError.socket(call: "bind(source \(source))", errno: errno) }
            }
            var addr = loopback(port: port)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else { throw HarnessError.socket(call: "connect(127.0.0.1:\(port))", errno: errno) }
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// A listening socket on 127.0.0.1 with a kernel-chosen port (habit 13: never a fixed port).
    static func listen(backlog: Int32 = 128) throws -> (fd: Int32, port: Int) {
        let fd = try makeSocket()
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            var addr = loopback(port: 0)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else { throw HarnessError.socket(call: "bind(127.0.0.1:0)", errno: errno) }
            guard Glibc.listen(fd, backlog) == 0 else { throw HarnessError.socket(call: "listen", errno: errno) }
            return (fd, try localPort(fd))
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    static func localPort(_ fd: Int32) throws -> Int {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { throw HarnessError.socket(call: "getsockname", errno: errno) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Writes all of `bytes`, retrying short writes. MSG_NOSIGNAL: a reset peer is an error, not a SIGPIPE.
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                Glibc.send(fd, buf.baseAddress! + offset, buf.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw HarnessError.socket(call: "send", errno: errno)
            }
            offset += n
        }
    }

    enum ReadResult {
        case data([UInt8])
        /// Orderly shutdown (recv returned 0) or a reset (ECONNRESET); `reset` tells which.
        case closed(reset: Bool)
        case timedOut
    }

    /// Waits until `fd` is readable or `deadline` passes, then reads what is there (at most 64 KiB).
    static func read(_ fd: Int32, deadline: Date) throws -> ReadResult {
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return .timedOut }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = Glibc.poll(&pfd, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw HarnessError.socket(call: "poll", errno: errno)
            }
            if ready == 0 { continue }  // loop re-checks the deadline
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return .data(Array(chunk[..<n])) }
            if n == 0 { return .closed(reset: false) }
            switch errno {
            case EINTR, EAGAIN: continue
            case ECONNRESET: return .closed(reset: true)
            default: throw HarnessError.socket(call: "recv", errno: errno)
            }
        }
    }

    static func setTimeouts(_ fd: Int32, _ timeout: TimeInterval) throws {
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            guard setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw HarnessError.socket(call: "setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)", errno: errno)
            }
        }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw HarnessError.socket(call: "setsockopt(\(level), \(option))", errno: errno)
        }
    }

    /// Closes with SO_LINGER 0, so the peer sees a TCP reset instead of an orderly FIN.
    static func closeWithReset(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        Glibc.close(fd)
    }

    static func setCloseOnExec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
    }

    private static func makeSocket() throws -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.socket(call: "socket", errno: errno) }
        return fd
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return addr
    }
}

import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A resolved IPv4/IPv6 socket address. Resolution uses blocking `getaddrinfo`, so it runs only on the
/// control path (startup, config reload, admin calls), never per request.
public struct SocketAddress: Sendable, CustomStringConvertible {
    @usableFromInline var storage: sockaddr_storage

    public static func resolve(host: String, port: Int) throws(SetupError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let name = host.isEmpty ? "0.0.0.0" : host
        let status = getaddrinfo(name, String(port), &hints, &result)
        guard status == 0, let first = result else {
            let reason = status == 0 ? "no address" : String(cString: gai_strerror(status))
            throw SetupError("cannot resolve \"\(host)\": \(reason)")
        }
        defer { freeaddrinfo(result) }
        // Prefer IPv4 when a name has both, so "localhost" means 127.0.0.1 like in most configs.
        var chosen = first
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let c = cursor {
            if c.pointee.ai_family == AF_INET { chosen = c; break }
            cursor = c.pointee.ai_next
        }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: chosen.pointee.ai_addr, count: Int(chosen.pointee.ai_addrlen)))
        }
        return SocketAddress(storage: storage)
    }

    @inlinable
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        withUnsafePointer(to: storage) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0) } }
    }

    public var port: Int {
        withSockaddr { sa in
            if sa.pointee.sa_family == sa_family_t(AF_INET6) {
                return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    public var description: String {
        var text: [UInt8] = []
        SocketAddress.formatIP(storage, into: &text)
        let ip = String(decoding: text, as: UTF8.self)
        return storage.ss_family == sa_family_t(AF_INET6) ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// Appends the textual IP of `storage` to `text` (no port, no brackets). IPv4 is written digit by digit: libc's
    /// `inet_ntop`, under `uv_ip4_name`, formats through `snprintf`, which cost more than the rest of this per
    /// accepted connection.
    public static func formatIP(_ storage: sockaddr_storage, into text: inout [UInt8]) {
        if storage.ss_family == sa_family_t(AF_INET) {
            var s = storage
            let address = withUnsafePointer(to: &s) { p in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            }
            for shift in stride(from: UInt32(24), through: 0, by: -8) {  // no array built per call
                let octet = UInt8(truncatingIfNeeded: address >> shift)
                if octet >= 100 { text.append(UInt8(ascii: "0") + octet / 100) }
                if octet >= 10 { text.append(UInt8(ascii: "0") + octet / 10 % 10) }
                text.append(UInt8(ascii: "0") + octet % 10)
                if shift != 0 { text.append(UInt8(ascii: ".")) }
            }
            return
        }
        var buf = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &buf) { raw in
            let dst = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            var s = storage
            let status: Int32 = withUnsafePointer(to: &s) { p in
                guard storage.ss_family == sa_family_t(AF_INET6) else { return -1 }
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_name($0, dst, raw.count) }
            }
            guard status == 0 else { return }
            let n = strlen(dst)
            text.append(contentsOf: UnsafeRawBufferPointer(start: dst, count: n))
        }
    }
}

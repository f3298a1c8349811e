import CLibUV
import Glibc
import LBUV
import XCTest

/// `Listener` accepts through its own poll: as many connections as the kernel reports queued, each with its
/// peer's address from `accept4` and `TCP_NODELAY` from the listening socket; an offer the owner leaves queued
/// stops the offers until the owner takes it. Over real loopback sockets.
final class ListenerTests: XCTestCase {
    /// A blocking client socket connected to `port` (the kernel completes the handshake into the listener's
    /// queue whether or not the loop runs), and the local port it connected from.
    private func connectClient(port: Int) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: local.sin_port)))
    }

    private func port(of storage: sockaddr_storage) -> Int {
        var s = storage
        return withUnsafePointer(to: &s) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    private func noDelay(_ conn: TCPConnection) -> Int32 {
        var fd: uv_os_fd_t = -1
        uv_fileno(UnsafeMutableRawPointer(conn.handle).assumingMemoryBound(to: uv_handle_t.self), &fd)
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length)
        return value
    }

    func testEveryQueuedConnectionIsAcceptedWithItsPeerAndNoDelayAndNoAcceptFails() throws {
        let loop = try EventLoop()
        let listener = try Listener(loop: loop, address: try SocketAddress.resolve(host: "127.0.0.1", port: 0))
        let clients = try (0..<5).map { _ in try connectClient(port: listener.boundAddress.port) }
        var accepted: [HandledTCPStream] = []
        var peers: [Int] = []
        var noDelays: [Int32] = []
        var offers = 0
        var failedAccepts = 0
        var watchdog: LoopTimer?
        func finish() {
            watchdog?.close()
            watchdog = nil
            for c in accepted { c.close() }
            listener.close()
        }
        listener.onAccept = { l in
            offers += 1
            let conn = HandledTCPStream(loop: loop)
            guard l.accept(into: conn) else {
                failedAccepts += 1
                return
            }
            accepted.append(conn)
            peers.append(self.port(of: l.acceptedPeer))
            noDelays.append(self.noDelay(conn))
            if accepted.count == clients.count { finish() }
        }
        watchdog = LoopTimer(loop: loop) { finish() }
        watchdog?.start(timeout: 10_000)
        loop.run()
        for c in clients { Glibc.close(c.fd) }

        XCTAssertEqual(Set(peers), Set(clients.map(\.port)), "each connection's peer is the client that connected")
        XCTAssertEqual(noDelays, Array(repeating: 1, count: clients.count), "accepted sockets have TCP_NODELAY")
        XCTAssertEqual(offers, clients.count, "one offer per queued connection")
        XCTAssertEqual(failedAccepts, 0, "no accept was tried on an empty queue")
        XCTAssertEqual(loop.close(), 0)
    }

    func testAnOfferLeftQueuedStopsTheOffersUntilTheOwnerTakesIt() throws {
        let loop = try EventLoop()
        let listener = try Listener(loop: loop, address: try SocketAddress.resolve(host: "127.0.0.1", port: 0))
        let port = listener.boundAddress.port
        var clients = [try connectClient(port: port)]
        var accepted: [HandledTCPStream] = []
        var offers = 0
        var offersWhileLeft = -1
        var peers: [Int] = []
        var timers: [LoopTimer] = []
        func finish() {
            for t in timers { t.close() }
            for c in accepted { c.close() }
            listener.close()
        }
        func take() {
            let conn = HandledTCPStream(loop: loop)
            guard listener.accept(into: conn) else { return finish() }
            accepted.append(conn)
            peers.append(self.port(of: listener.acceptedPeer))
        }
        listener.onAccept = { _ in
            offers += 1
            if offers == 1 {
                // Left queued: a second client connects, and for 100 ms (many loop turns) nothing is offered.
                clients.append(try! self.connectClient(port: port))
                let later = LoopTimer(loop: loop) {
                    offersWhileLeft = offers
                    take()  // the first, taken late; offers resume and bring the second
                }
                timers.append(later)
                later.start(timeout: 100)
                return
            }
            take()
            if accepted.count == 2 { finish() }
        }
        let watchdog = LoopTimer(loop: loop) { finish() }
        timers.append(watchdog)
        watchdog.start(timeout: 10_000)
        loop.run()
        for c in clients { Glibc.close(c.fd) }

        XCTAssertEqual(offersWhileLeft, 1, "no offer while the owner left one queued")
        XCTAssertEqual(peers, clients.map(\.port), "the one left queued was taken first, then the next")
        XCTAssertEqual(offers, 2)
        XCTAssertEqual(loop.close(), 0)
    }

    /// IPv4 is formatted digit by digit (no `snprintf`): every octet width, and IPv6 through libuv.
    func testAddressesAreFormattedAsInetNtopWouldFormatThem() throws {
        for text in ["0.0.0.0", "1.2.3.4", "9.10.99.100", "127.0.0.1", "255.255.255.255", "10.200.30.4", "::1",
            "2001:db8::8a2e:370:7334"]
        {
            var storage = sockaddr_storage()
            try SocketAddress.resolve(host: text, port: 80).withSockaddr { address in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(
                    start: address, count: MemoryLayout<sockaddr_storage>.size)) }
            }
            var formatted: [UInt8] = []
            SocketAddress.formatIP(storage, into: &formatted)
            XCTAssertEqual(String(decoding: formatted, as: UTF8.self), text)
        }
    }
}

import Glibc
import LBUV
import Logging
import XCTest

@testable import LBServer

/// A start that fails part-way closes what it opened before the error reaches the caller. Here the admin address
/// is taken, so `start()` fails after the traffic listener and both worker threads are up: they must have
/// ended, the traffic port must be free again and the control loop's inbox closed. (Under `make test-asan`
/// LeakSanitizer also checks, at this test process's exit, that the handles' memory was freed.)
final class FailedStartTests: XCTestCase {
    func testAFailedStartEndsItsWorkerThreadsAndClosesItsListeners() throws {
        let taken = try ListeningSocket()
        defer { taken.close() }
        let overrides = CommandLineOverrides(
            listen: "127.0.0.1:0", admin: "127.0.0.1:\(taken.port)", backends: ["127.0.0.1:9"], workers: "2")
        let config = try LBConfig.resolve(configPath: nil, overrides: overrides, environment: [:])
        let server = try ProxyServer(
            config: config, configPath: nil, overrides: overrides, logger: Logger(label: "failed-start-test"))
        XCTAssertThrowsError(try server.start(), "the admin address is in use")

        XCTAssertEqual(server.threads.count, 2, "both worker threads had started before the admin API failed")
        XCTAssertTrue(server.threads.allSatisfy(\.isDone), "a worker thread of the failed start still runs")
        XCTAssertFalse(server.controlInbox.post {}, "the control loop's inbox is still open")
        let port = try XCTUnwrap(server.proxyAddress?.port)
        let again = try ListeningSocket(port: port)
        again.close()
    }
}

/// A plain listening TCP socket on 127.0.0.1 (no SO_REUSEADDR or SO_REUSEPORT), so a later bind of its port fails
/// with EADDRINUSE while it is open. `port` 0 picks a free one.
private struct ListeningSocket {
    let fd: Int32
    let port: Int

    init(port: Int = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else {
            let error = errno
            Glibc.close(fd)
            throw SetupError("bind or listen on 127.0.0.1:\(port): errno \(error)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(fd) }
}

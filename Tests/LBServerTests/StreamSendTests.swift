import CLibUV
import Glibc
import LBUV
import XCTest

/// `TCPConnection.send`: bytes go to the kernel at once, behind a head appended before them in the same
/// `writev`; what the kernel refuses is held once, in the buffer lent to `uv_write` (never also in `out`); bytes
/// sent while that write is in flight join `out` behind it. Nothing is ever reordered. Over a real loopback
/// connection.
final class StreamSendTests: XCTestCase {
    private final class Peer: ByteStreamHandler {
        let stream: HandledTCPStream
        var received: [UInt8] = []
        var onConnected: () -> Void = {}
        var onRead: () -> Void = {}
        var onDrained: () -> Void = {}
        init(loop: EventLoop) {
            stream = HandledTCPStream(loop: loop)
            stream.handler = self
        }
        func streamRead(_ bytes: UnsafeRawBufferPointer) {
            received.append(contentsOf: bytes)
            onRead()
        }
        func streamReadEnd(_ error: UVError) { stream.close() }
        func streamDrained() { onDrained() }
        func streamClosed() {}
        func streamConnected(_ error: UVError?) { onConnected() }
    }

    /// A 64 KiB piece whose bytes say which piece and where in it they are, so a reordering cannot go unseen.
    private static func piece(_ n: Int) -> [UInt8] {
        (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ n &* 131 &+ ($0 >> 8)) }
    }

    /// Connects a writer to a reader over loopback. Once both ends are up, with the reader not reading yet so the
    /// writer can fill the kernel's buffers, `write` sends through the writer and returns every byte it sent, in
    /// order; the reader then reads until as many arrived (or 20 s pass: the failure says how far it got).
    private func sendOverLoopback(
        _ write: @escaping (HandledTCPStream) -> [UInt8]
    ) throws -> (sent: [UInt8], received: [UInt8], failure: String?) {
        let loop = try EventLoop()
        let listener = try Listener(loop: loop, address: try SocketAddress.resolve(host: "127.0.0.1", port: 0))
        let writer = Peer(loop: loop)
        var reader: Peer?
        var sent: [UInt8] = []
        var failure: String?
        func finish() {
            reader?.stream.close()
            writer.stream.close()
            listener.close()
        }
        var watchdog: LoopTimer?
        watchdog = LoopTimer(loop: loop) {
            failure = "timed out: \(reader?.received.count ?? 0) of \(sent.count) bytes arrived"
            finish()
            watchdog?.close()
            watchdog = nil
        }
        watchdog?.start(timeout: 20_000)
        var connected = false
        func go() {
            guard connected, let r = reader else { return }
            sent = write(writer.stream)
            r.onRead = {
                if r.received.count >= sent.count {
                    watchdog?.close()
                    watchdog = nil
                    finish()
                }
            }
            r.stream.startReading()
        }
        listener.onAccept = { l in
            let r = Peer(loop: loop)
            guard l.accept(into: r.stream) else { return }
            reader = r
            go()
        }
        writer.onConnected = {
            connected = true
            go()
        }
        listener.boundAddress.withSockaddr { writer.stream.connect(to: $0) }
        loop.run()
        XCTAssertEqual(loop.close(), 0)
        return (sent, reader?.received ?? [], failure)
    }

    func testSendWritesAtOnceBehindAHeadAndHoldsWhatTheKernelRefusesOnce() throws {
        var directWithNothingAhead = false
        var headAndBodyTogether = false
        var refusedHeldOnce = false
        var queuedBehindInFlight = false
        var piecesSent = 0
        let result = try sendOverLoopback { w in
            var expected: [UInt8] = []
            // 1. Nothing queued: the bytes go to the kernel, `out` stays empty.
            let first = Array("first".utf8)
            first.withUnsafeBytes { w.send($0) }
            expected += first
            directWithNothingAhead = w.out.isEmpty && !w.isWriting
            // 2. A head appended and not flushed: a body sent after it goes out with it, behind it.
            let head = Array("HTTP/1.1 200 OK\r\n\r\n".utf8)
            w.append(head)
            expected += head
            let body = Array("body".utf8)
            body.withUnsafeBytes { w.send($0) }
            expected += body
            headAndBodyTogether = w.out.isEmpty && !w.isWriting
            // 3. Pieces until the kernel refuses part of one (the reader is not reading): that part is held in the
            // write in flight, `out` holds nothing.
            while piecesSent < 4_096, !w.isWriting {
                let p = Self.piece(piecesSent)
                p.withUnsafeBytes { w.send($0) }
                expected += p
                piecesSent += 1
            }
            refusedHeldOnce = w.isWriting && w.out.isEmpty && w.writeQueueBytes > 0 && w.writeQueueBytes <= 65_536
            // 4. More while that write is in flight: they queue behind it.
            for _ in 0..<3 {
                let p = Self.piece(piecesSent)
                p.withUnsafeBytes { w.send($0) }
                expected += p
                piecesSent += 1
            }
            queuedBehindInFlight = w.out.count == 3 * 65_536
            w.flush()
            return expected
        }
        XCTAssertNil(result.failure)
        XCTAssertTrue(directWithNothingAhead, "bytes sent with nothing queued went to the kernel at once")
        XCTAssertTrue(headAndBodyTogether, "bytes sent behind an unflushed head went to the kernel with it")
        XCTAssertTrue(refusedHeldOnce, "what the kernel refused of \(piecesSent) pieces is held once, in the write")
        XCTAssertTrue(queuedBehindInFlight, "bytes sent during the write queued behind it")
        XCTAssertEqual(result.received.count, result.sent.count)
        XCTAssertTrue(result.received == result.sent, "every byte arrived once, in the order it was sent")
    }

    /// The kernel refuses everything (its buffers were filled behind the connection's back) while a head waits in
    /// `out`: head and body are held together, in order, in the write lent to libuv, and `out` is empty.
    func testAHeadAndBodyTheKernelRefusesWholeAreHeldInOrderInOneWrite() throws {
        var heldTogether = false
        let result = try sendOverLoopback { w in
            var expected: [UInt8] = []
            var fd: uv_os_fd_t = -1
            uv_fileno(UnsafeMutableRawPointer(w.handle).assumingMemoryBound(to: uv_handle_t.self), &fd)
            // Fill the kernel's buffers directly (the socket is non-blocking) until it takes nothing more.
            var n = 0
            while true {
                let p = Self.piece(n)
                let wrote = p.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if wrote <= 0 { break }
                expected += p[0..<wrote]
                n += 1
            }
            let head = Array("HTTP/1.1 200 OK\r\ncontent-length: 65536\r\n\r\n".utf8)
            w.append(head)
            let body = Self.piece(9_999)
            body.withUnsafeBytes { w.send($0) }
            expected += head + body
            heldTogether = w.isWriting && w.out.isEmpty && w.writeQueueBytes == head.count + body.count
            return expected
        }
        XCTAssertNil(result.failure)
        XCTAssertTrue(heldTogether, "the refused head and body are held in one write, nothing in out")
        XCTAssertEqual(result.received.count, result.sent.count)
        XCTAssertTrue(result.received == result.sent, "every byte arrived once, in the order it was sent")
    }
}

import LBUV
import XCTest

/// `TCPConnection.send`: bytes go to the kernel at once when nothing is queued ahead of them, and otherwise
/// join the queue behind what is there, so a body streamed through is never reordered against a head appended
/// before it, nor against bytes the kernel refused earlier. Over a real loopback connection.
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

    func testSendWritesAtOnceWhenNothingIsAheadAndQueuesBehindWhatIs() throws {
        let loop = try EventLoop()
        let listener = try Listener(loop: loop, address: try SocketAddress.resolve(host: "127.0.0.1", port: 0))
        let writer = Peer(loop: loop)
        var reader: Peer?
        var expected: [UInt8] = []
        var directWithNothingAhead = false
        var queuedBehindHead = false
        var queuedBehindFullKernel = false
        var piecesSent = 0
        var failure: String?

        func finish() {
            reader?.stream.close()
            writer.stream.close()
            listener.close()
        }
        var watchdog: LoopTimer?
        watchdog = LoopTimer(loop: loop) {
            failure = "timed out: \(reader?.received.count ?? 0) of \(expected.count) bytes arrived"
            finish()
            watchdog?.close()
            watchdog = nil
        }
        watchdog?.start(timeout: 20_000)

        var connected = false
        func go() {
            guard connected, let r = reader else { return }
            let w = writer.stream
            // 1. Nothing queued: the bytes go to the kernel, `out` stays empty.
            let first = Array("first".utf8)
            first.withUnsafeBytes { w.send($0) }
            expected += first
            directWithNothingAhead = w.out.isEmpty && !w.isWriting
            // 2. A head appended and not flushed: a body sent after it waits behind it.
            let head = Array("HTTP/1.1 200 OK\r\n\r\n".utf8)
            w.append(head)
            expected += head
            let body = Array("body".utf8)
            body.withUnsafeBytes { w.send($0) }
            expected += body
            queuedBehindHead = w.out == head + body
            w.flush()
            // 3. Pieces until the kernel refuses some (the reader is not reading), then more behind them.
            while piecesSent < 4_096, w.out.isEmpty, !w.isWriting {
                let p = Self.piece(piecesSent)
                p.withUnsafeBytes { w.send($0) }
                expected += p
                piecesSent += 1
            }
            queuedBehindFullKernel = !w.out.isEmpty
            for _ in 0..<3 {
                let p = Self.piece(piecesSent)
                p.withUnsafeBytes { w.send($0) }
                expected += p
                piecesSent += 1
            }
            w.flush()
            r.onRead = {
                if r.received.count >= expected.count {
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
            // The reader does not read yet: the writer fills the kernel's buffers first.
            reader = r
            go()
        }
        writer.onConnected = {
            connected = true
            go()
        }
        listener.boundAddress.withSockaddr { writer.stream.connect(to: $0) }
        loop.run()

        XCTAssertNil(failure)
        XCTAssertTrue(directWithNothingAhead, "bytes sent with nothing queued went to the kernel at once")
        XCTAssertTrue(queuedBehindHead, "bytes sent behind an unflushed head joined the queue after it")
        XCTAssertTrue(queuedBehindFullKernel, "the kernel refused part of \(piecesSent) pieces and the rest queued")
        XCTAssertEqual(reader?.received.count, expected.count)
        XCTAssertTrue(reader?.received == expected, "every byte arrived once, in the order it was sent")
        XCTAssertEqual(loop.close(), 0)
    }
}

import LBUV
import XCTest

/// `EventLoop.requestAfterEvent`: work asked for from a stream callback runs as soon as that callback returns,
/// before the next ready socket of the same poll, where the end of the loop turn (a `LoopCheck`) would come only
/// after all of them. The queue's grants rely on it (`Worker.scheduleGrant`).
final class AfterEventTests: XCTestCase {
    /// Records what happened, in order, on one loop thread.
    private final class Journal {
        var entries: [String] = []
        /// The first read asks for the work, whichever socket it is.
        var asked = false
    }

    private final class Reader: ByteStreamHandler {
        let name: String
        let loop: EventLoop
        let journal: Journal
        let stream: HandledTCPStream

        init(name: String, loop: EventLoop, journal: Journal) {
            self.name = name
            self.loop = loop
            self.journal = journal
            stream = HandledTCPStream(loop: loop)
            stream.handler = self
        }

        func streamRead(_ bytes: UnsafeRawBufferPointer) {
            journal.entries.append("read \(name)")
            if !journal.asked {
                journal.asked = true
                loop.requestAfterEvent()
            }
        }
        func streamReadEnd(_ error: UVError) { stream.close() }
        func streamDrained() {}
        func streamClosed() {}
    }

    private final class Writer: ByteStreamHandler {
        let stream: HandledTCPStream
        var onConnected: () -> Void = {}
        init(loop: EventLoop) {
            stream = HandledTCPStream(loop: loop)
            stream.handler = self
        }
        func streamRead(_ bytes: UnsafeRawBufferPointer) {}
        func streamReadEnd(_ error: UVError) { stream.close() }
        func streamDrained() {}
        func streamClosed() {}
        func streamConnected(_ error: UVError?) { onConnected() }
    }

    func testWorkAskedForInAReadRunsBeforeTheNextSocketOfTheSamePoll() throws {
        let loop = try EventLoop()
        let journal = Journal()
        loop.afterEvent = { journal.entries.append("after") }
        var endOfTurn: LoopCheck?
        endOfTurn = LoopCheck(loop: loop) {
            journal.entries.append("end of turn")
            endOfTurn?.stop()
        }
        let listener = try Listener(loop: loop, address: try SocketAddress.resolve(host: "127.0.0.1", port: 0))
        var readers: [Reader] = []
        listener.onAccept = { l in
            let r = Reader(name: "\(readers.count)", loop: loop, journal: journal)
            guard l.accept(into: r.stream) else { return }
            readers.append(r)
            r.stream.startReading()
        }
        let writers = [Writer(loop: loop), Writer(loop: loop)]
        // Once both are connected and accepted, one timer callback writes to both: the next poll finds both
        // accepted sockets readable, and the end of that turn is watched.
        let go = LoopTimer(loop: loop) {
            for w in writers {
                w.stream.append(Array("x".utf8))
                w.stream.flush()
            }
            endOfTurn?.start()
        }
        var connected = 0
        for w in writers {
            w.onConnected = {
                connected += 1
                if connected == writers.count { go.start(timeout: 20) }
            }
            listener.boundAddress.withSockaddr { w.stream.connect(to: $0) }
        }
        var closeAll: LoopTimer?
        closeAll = LoopTimer(loop: loop) {
            for r in readers { r.stream.close() }
            for w in writers { w.stream.close() }
            listener.close()
            endOfTurn?.close()
            endOfTurn = nil
            go.close()
            closeAll?.close()
            closeAll = nil
        }
        closeAll?.start(timeout: 300)
        loop.run()
        let firstTurn = Array(journal.entries.prefix { $0 != "end of turn" })
        XCTAssertEqual(firstTurn.count, 3, "both reads came in one turn: \(journal.entries)")
        XCTAssertEqual(firstTurn.dropFirst().first, "after", "the work ran between the two reads: \(journal.entries)")
        XCTAssertEqual(journal.entries.filter { $0 == "after" }.count, 1, "once per request: \(journal.entries)")
        XCTAssertEqual(loop.close(), 0)
    }
}

import LBH2
import XCTest

/// An idle session gives its frame buffer's pages back, and the frames serialised afterwards are exactly those of
/// a session that never did.
final class H2MemoryTests: XCTestCase {
    private final class Responder: H2SessionDelegate {
        var body: [UInt8] = []
        var opened: [Int32] = []
        func h2StreamOpened(_ id: Int32) -> Bool {
            opened.append(id)
            return true
        }
        func h2Header(_ id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {}
        func h2HeadersComplete(_ id: Int32, endStream: Bool) {}
        func h2Data(_ id: Int32, _ bytes: UnsafeRawBufferPointer) {}
        func h2RequestEnded(_ id: Int32) {}
        func h2StreamClosed(_ id: Int32, errorCode: UInt32) {}
        func h2FrameReceived(type: UInt8, streamID: Int32, length: Int, flags: UInt8) {}
        func h2ControlSent(type: UInt8, streamID: Int32, errorCode: UInt32) {}
        func h2ReadBody(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)? {
            let n = min(buffer.count, body.count)
            buffer.copyBytes(from: body[..<n])
            body.removeFirst(n)
            return (n, body.isEmpty)
        }
        func h2ResponseTrailers(_ id: Int32) -> H2Fields? { nil }
    }

    /// GET https://a/ on stream `id` (HPACK static table, `:authority` a literal), END_STREAM.
    private func get(_ id: UInt8) -> [UInt8] { [0, 0, 6, 1, 5, 0, 0, 0, id, 0x82, 0x87, 0x84, 0x41, 0x01, 0x61] }

    /// Serves one GET per call with a 40,000-byte body (three DATA frames through the frame buffer); with
    /// `releasing`, the idle session gives its pages back before each request. Returns every byte sent.
    private func serve(requests: Int, releasing: Bool) throws -> (bytes: [UInt8], released: [Int]) {
        let responder = Responder()
        let session = try H2Session(delegate: responder, settings: H2Session.Settings(maxConcurrentStreams: 100))
        var sent: [UInt8] = []
        var released: [Int] = []
        // SETTINGS_INITIAL_WINDOW_SIZE 2^30 and a connection WINDOW_UPDATE as large: no response waits for window.
        var input = H2Session.preface + [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0x40, 0, 0, 0]
        input += [0, 0, 4, 8, 0, 0, 0, 0, 0, 0x40, 0, 0, 0]
        for i in 0..<requests {
            XCTAssertNil(input.withUnsafeBytes { session.receive($0) })
            XCTAssertNil(session.send(into: &sent, limit: 1 << 22))
            if i > 0 {
                let id = Int32(2 * i - 1)
                responder.body = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
                XCTAssertTrue(session.submitResponse(id, status: 200, fields: H2Fields(), body: true))
                XCTAssertNil(session.send(into: &sent, limit: 1 << 22))
            }
            XCTAssertFalse(session.wantsWrite)
            if releasing { released.append(session.releaseIdlePages()) }
            input = get(UInt8(2 * i + 1))
        }
        return (sent, released)
    }

    func testAnIdleSessionReleasesItsFrameBufferAndLaterFramesAreUnchanged() throws {
        let plain = try serve(requests: 4, releasing: false)
        let released = try serve(requests: 4, releasing: true)
        XCTAssertGreaterThan(plain.bytes.count, 3 * 40_000)
        XCTAssertEqual(released.bytes, plain.bytes, "frames after a release are the same bytes")
        // The frame buffer (16 KB and a frame header, five pages) always; the stream map's 4 KB table too, since
        // it is all zeros again once the stream is gone (before the first request it was never written).
        for bytes in released.released { XCTAssertEqual(bytes, 5 * 4096 + 4096, "\(released.released)") }
    }

    /// With a stream open the stream map holds it: only the frame buffer goes, and the stream is still found and
    /// answered afterwards.
    func testAnOpenStreamKeepsTheStreamMapAndIsAnsweredAfterARelease() throws {
        let responder = Responder()
        let session = try H2Session(delegate: responder, settings: H2Session.Settings(maxConcurrentStreams: 100))
        var sent: [UInt8] = []
        let input = H2Session.preface + [0, 0, 0, 4, 0, 0, 0, 0, 0] + get(1)
        XCTAssertNil(input.withUnsafeBytes { session.receive($0) })
        XCTAssertNil(session.send(into: &sent, limit: 1 << 22))
        XCTAssertEqual(responder.opened, [1])
        XCTAssertEqual(session.releaseIdlePages(), 5 * 4096, "the map's page stays while stream 1 is in it")
        responder.body = Array(repeating: 0x61, count: 100)
        XCTAssertTrue(session.submitResponse(1, status: 200, fields: H2Fields(), body: true))
        let before = sent.count
        XCTAssertNil(session.send(into: &sent, limit: 1 << 22))
        // HEADERS (9 + 1 byte, `:status: 200` indexed) and one DATA frame with the 100 bytes, END_STREAM.
        XCTAssertEqual(sent.count - before, 10 + 9 + 100)
        XCTAssertEqual(Array(sent[(sent.count - 109)..<(sent.count - 100)]), [0, 0, 100, 0, 1, 0, 0, 0, 1])
    }
}

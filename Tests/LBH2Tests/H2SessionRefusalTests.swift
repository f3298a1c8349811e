import LBH2
import XCTest

/// What the delegate hears of a stream it refused: nghttp2 keeps decoding that HEADERS' block (the HPACK state is
/// the connection's) and reports its fields, then nothing but the close once the REFUSED_STREAM reset is out.
final class H2SessionRefusalTests: XCTestCase {
    private final class Recorder: H2SessionDelegate {
        var events: [String] = []
        var accepting = 1

        func h2StreamOpened(_ id: Int32) -> Bool {
            events.append("open \(id)")
            accepting -= 1
            return accepting >= 0
        }
        func h2Header(_ id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            events.append("header \(id) \(String(decoding: name, as: UTF8.self))")
        }
        func h2HeadersComplete(_ id: Int32, endStream: Bool) { events.append("complete \(id)") }
        func h2Data(_ id: Int32, _ bytes: UnsafeRawBufferPointer) { events.append("data \(id)") }
        func h2RequestEnded(_ id: Int32) { events.append("end \(id)") }
        func h2StreamClosed(_ id: Int32, errorCode: UInt32) { events.append("close \(id) \(errorCode)") }
        func h2FrameReceived(type: UInt8, streamID: Int32, length: Int, flags: UInt8) {}
        func h2ControlSent(type: UInt8, streamID: Int32, errorCode: UInt32) {}
        func h2ReadBody(_ id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)? { nil }
        func h2ResponseTrailers(_ id: Int32) -> H2Fields? { nil }
    }

    /// A HEADERS frame (END_HEADERS, END_STREAM as asked) for GET https://a/ from HPACK's static table, with
    /// `:authority` a literal.
    private func headers(_ id: UInt8, endStream: Bool) -> [UInt8] {
        [0, 0, 6, 1, endStream ? 5 : 4, 0, 0, 0, id, 0x82, 0x87, 0x84, 0x41, 0x01, 0x61]
    }

    func testARefusedStreamReportsItsFieldsThenOnlyItsClose() throws {
        let recorder = Recorder()
        // nghttp2 refuses streams over SETTINGS_MAX_CONCURRENT_STREAMS itself, unreported: the delegate refuses
        // below it, as lb does while reset streams still hold their slots.
        let session = try H2Session(delegate: recorder, settings: H2Session.Settings(maxConcurrentStreams: 100))
        var input = H2Session.preface + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        input += headers(1, endStream: false)
        input += headers(3, endStream: false)
        input += [0, 0, 2, 0, 1, 0, 0, 0, 3] + Array("hi".utf8)  // DATA with END_STREAM on the refused stream
        XCTAssertNil(input.withUnsafeBytes { session.receive($0) })
        var out: [UInt8] = []
        XCTAssertNil(session.send(into: &out, limit: 1 << 20))

        func fields(_ id: Int) -> [String] {
            [":method", ":scheme", ":path", ":authority"].map { "header \(id) \($0)" }
        }
        XCTAssertEqual(
            recorder.events,
            ["open 1"] + fields(1) + ["complete 1", "open 3"] + fields(3) + ["close 3 \(H2Session.refusedStream)"])
    }
}

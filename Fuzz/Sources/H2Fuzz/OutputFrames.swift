/// What the harness handed nghttp2 for one stream's response, for checking the frames that went out.
struct ResponseLedger {
    var submitted = false
    var hasBody = false
    /// Body bytes given to nghttp2 (`h2ReadBody`), and whether the last call said the body ends.
    var provided = 0
    var endProvided = false
}

/// Follows the bytes `send` produced across calls as a sequence of frames and checks each one: the server's
/// SETTINGS first; only frame types a server sends, with lengths their type allows and on streams of the right
/// kind; a response's HEADERS (and CONTINUATIONs, uninterrupted) before its DATA, nothing after END_STREAM or
/// after lb reset the stream; DATA unpadded, made of exactly the body bytes the delegate provided, in order, with
/// END_STREAM only once the whole body went out.
struct OutputFrames {
    private var pending: [UInt8] = []
    private var count = 0
    private var continuing: Int32?
    private var sent: [Int32: SentStream] = [:]

    private struct SentStream {
        var headers = false
        var ended = false
        var reset = false
        var dataBytes = 0
    }

    mutating func take(_ bytes: [UInt8], ledger: [Int32: ResponseLedger]) {
        pending.append(contentsOf: bytes)
        var at = 0
        while pending.count - at >= 9 {
            let length = Int(pending[at]) << 16 | Int(pending[at + 1]) << 8 | Int(pending[at + 2])
            guard pending.count - at >= 9 + length else { break }
            let type = pending[at + 3]
            let flags = pending[at + 4]
            let raw = UInt32(pending[at + 5]) << 24 | UInt32(pending[at + 6]) << 16 | UInt32(pending[at + 7]) << 8
                | UInt32(pending[at + 8])
            check(raw & 0x8000_0000 == 0, "reserved bit set in a stream id")
            frame(type, flags, Int32(bitPattern: raw), payload: pending[(at + 9)..<(at + 9 + length)], ledger)
            at += 9 + length
        }
        pending.removeFirst(at)
    }

    private mutating func frame(
        _ type: UInt8, _ flags: UInt8, _ id: Int32, payload: ArraySlice<UInt8>, _ ledger: [Int32: ResponseLedger]
    ) {
        let length = payload.count
        defer { count += 1 }
        if count == 0 { check(type == 4 && flags & 1 == 0 && id == 0, "the server's first frame is not SETTINGS") }
        if let c = continuing { check(type == 9 && id == c, "frame type \(type) inside the header block of \(c)") }
        let endStream = flags & 1 != 0
        let endHeaders = flags & 4 != 0
        switch type {
        case 0:  // DATA
            check(id > 0 && id & 1 == 1, "DATA on stream \(id)")
            check(flags & 8 == 0 && length <= 16384, "DATA padded or \(length) bytes long")
            let book = ledger[id] ?? ResponseLedger()
            var s = sent[id] ?? SentStream()
            check(s.headers && !s.ended && !s.reset, "DATA on \(id) without a response head, after its end or reset")
            let expected = FuzzStream.pattern(id)
            check(!payload.contains { $0 != expected }, "DATA of \(id) carries bytes not of its body")
            s.dataBytes += length
            check(s.dataBytes <= book.provided, "\(s.dataBytes) DATA bytes on \(id), \(book.provided) provided")
            if endStream {
                check(book.endProvided && s.dataBytes == book.provided, "END_STREAM on \(id) before its body ended")
                s.ended = true
            }
            sent[id] = s
        case 1:  // HEADERS
            check(id > 0 && id & 1 == 1, "HEADERS on stream \(id)")
            let book = ledger[id] ?? ResponseLedger()
            var s = sent[id] ?? SentStream()
            check(book.submitted && !s.headers && !s.reset, "HEADERS on \(id): none submitted, twice or after reset")
            s.headers = true
            if endStream {
                check(!book.hasBody, "response head of \(id) ends a stream that has a body")
                s.ended = true
            }
            if !endHeaders { continuing = id }
            sent[id] = s
        case 3:  // RST_STREAM
            check(id > 0 && length == 4, "RST_STREAM on \(id), \(length) bytes")
            sent[id, default: SentStream()].reset = true
        case 4:  // SETTINGS
            check(id == 0 && length % 6 == 0 && (flags & 1 == 0 || length == 0), "SETTINGS: \(length) bytes on \(id)")
        case 6:  // PING: lb only answers them
            check(id == 0 && length == 8 && flags & 1 == 1, "PING: \(length) bytes on \(id), flags \(flags)")
        case 7:  // GOAWAY
            check(id == 0 && length >= 8, "GOAWAY: \(length) bytes on \(id)")
        case 8:  // WINDOW_UPDATE
            check(length == 4, "WINDOW_UPDATE of \(length) bytes")
            let increment = payload.reduce(0) { $0 << 8 | Int($1) } & 0x7fff_ffff
            check(increment > 0, "WINDOW_UPDATE of 0 on \(id)")
        case 9:  // CONTINUATION
            check(continuing == id, "CONTINUATION on \(id) outside a header block")
            if endHeaders { continuing = nil }
        default:
            check(false, "the server sent frame type \(type)")
        }
    }
}

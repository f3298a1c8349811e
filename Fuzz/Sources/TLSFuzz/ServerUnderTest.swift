import Glibc
import LBTLS

/// One line on stderr (TLSFUZZ_VERBOSE).
func trace(_ line: String) {
    _ = (line + "\n").withCString { write(2, $0, strlen($0)) }
}

/// One server `TLSSession` driven the way a connection drives it (feed, then readPlaintext, then
/// takeCiphertext), checking the session's contract on every call:
/// - `.progress` appends plaintext, `.wantMoreInput` appends none, and plaintext never comes before the
///   handshake completes (no early data is accepted); `.failed` may come after plaintext appended by the same
///   call (records before the bad one);
/// - once a read failed, no later read yields anything or asks for more input (it fails again, or says
///   `.closed` when the failure was the peer's fatal alert); once the peer's close_notify was read, no later
///   read yields anything (a read that fails after `.closed` is tolerated);
/// - `takeCiphertext` moves everything (`hasCiphertext` is false after it, and true before it exactly when it
///   moves bytes), and what it moves is whole TLS records, each well formed;
/// - `writePlaintext` is `.done` only once the handshake completed and never after a failure, and `.done`
///   queues at least the plaintext's length of ciphertext;
/// - `shutdown()` queues nothing unless the handshake completed and nothing failed.
final class ServerUnderTest {
    let session: TLSSession
    /// Every plaintext byte read, in order.
    private(set) var plaintext: [UInt8] = []
    /// The first failure a read reported.
    private(set) var failure: TLSError?
    /// The peer's close_notify was read.
    private(set) var closed = false
    /// Plaintext written with `.done`, in order.
    private(set) var written: [UInt8] = []
    /// Ciphertext taken and not yet handed on by the caller (`drainOutput`).
    private var output: [UInt8] = []
    private(set) var records = 0

    init(_ context: TLSServerContext) {
        do {
            session = try TLSSession(context: context)
        } catch {
            fatalError("TLSSession(context:) failed: \(error)")
        }
    }

    /// One socket read's worth of ciphertext: feed, read, take.
    func receive(_ bytes: UnsafeRawBufferPointer) {
        session.feed(ciphertext: bytes)
        read()
        take()
    }

    func read() {
        let before = plaintext.count
        let wasFailed = failure != nil
        let wasClosed = closed
        let result = session.readPlaintext(into: &plaintext)
        let grew = plaintext.count > before
        if DrivenRun.verbose { trace("read: \(result), +\(plaintext.count - before) bytes") }
        switch result {
        case .progress:
            check(grew, "readPlaintext: .progress without plaintext")
        case .wantMoreInput:
            check(!grew, "readPlaintext: .wantMoreInput appended \(plaintext.count - before) bytes")
        case .closed:
            closed = true
        case .failed(let error):
            if failure == nil { failure = error }
        }
        // A read can append plaintext and then fail on a later record; a failed session says its handshake is
        // unfinished (OpenSSL puts it back "in init"), so only reads that did not fail are checked here.
        if grew, !result.isFailure {
            check(session.isHandshakeComplete, "plaintext before the handshake completed")
            check(session.protocolVersion != nil && session.cipherName != nil, "plaintext without a version/cipher")
        }
        if wasFailed {
            check(!grew, "plaintext after a failed read")
            switch result {
            // After the peer's fatal alert OpenSSL's SSL_read returns 0 and SSL_get_error calls that a clean
            // close (it compares the last warning alert, still 0, with close_notify, also 0): `.closed`.
            case .failed, .closed: break
            default: check(false, "read after a failure returned \(result)")
            }
        }
        if wasClosed {
            check(!grew, "plaintext after close_notify")
            switch result {
            case .closed, .failed: break
            default: check(false, "read after close_notify returned \(result)")
            }
        }
    }

    func take() {
        let before = output.count
        let had = session.hasCiphertext
        session.takeCiphertext(into: &output)
        check(had == (output.count > before), "hasCiphertext was \(had); takeCiphertext moved \(output.count - before)")
        check(!session.hasCiphertext, "ciphertext left after takeCiphertext")
        checkRecords(output[before...])
    }

    /// Writes `count` bytes of a fixed pattern; the result is returned for the caller's own expectations.
    @discardableResult
    func write(count: Int) -> TLSWriteResult {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: written.count + $0 &* 13 &+ 5) }
        let completeBefore = session.isHandshakeComplete
        let before = output.count
        let result = bytes.withUnsafeBytes { session.writePlaintext($0) }
        take()
        if case .done = result {
            check(session.isHandshakeComplete, "writePlaintext .done before the handshake completed")
            check(failure == nil, "writePlaintext .done after a failed read")
            check(output.count - before >= count, "writePlaintext .done queued \(output.count - before) bytes for \(count)")
            written += bytes
        } else if case .wantMoreInput = result {
            check(!completeBefore, "writePlaintext .wantMoreInput after the handshake completed")
        }
        return result
    }

    func shutdown() {
        let quiet = !session.isHandshakeComplete || failure != nil
        let before = output.count
        session.shutdown()
        take()
        if quiet { check(output.count == before, "shutdown() queued ciphertext with no secure channel") }
    }

    /// The ciphertext taken since the last call, for the peer.
    func drainOutput() -> [UInt8] {
        defer { output.removeAll(keepingCapacity: true) }
        return output
    }

    /// What one `takeCiphertext` moved must be whole records: type 20-23, version 3.1-3.4, length 1 to 2^14 +
    /// 2048 (RFC 5246 section 6.2.3; TLS 1.3 allows only 2^14 + 256).
    private func checkRecords(_ bytes: ArraySlice<UInt8>) {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            check(bytes.endIndex - i >= 5, "takeCiphertext ended inside a record header")
            let type = bytes[i]
            let major = bytes[i + 1], minor = bytes[i + 2]
            let length = Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])
            check((20...23).contains(type), "record type \(type)")
            // An alert refusing the client's version goes out under that version (OpenSSL echoes the ClientHello's
            // legacy_version, whatever it is), so only other records have to carry TLS's.
            check(type == 21 || (major == 3 && (1...4).contains(minor)), "record type \(type), version \(major).\(minor)")
            check(length >= 1 && length <= 16_384 + 2048, "record length \(length)")
            check(bytes.endIndex - i - 5 >= length, "takeCiphertext ended inside a record")
            i += 5 + length
            records += 1
        }
    }
}

extension TLSReadResult {
    var isFailure: Bool {
        if case .failed = self { return true }
        return false
    }
}

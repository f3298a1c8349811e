import COpenSSL

/// What a TLS connection does on the data path, whichever side it is: an SSL object between two memory BIOs.
/// Ciphertext from the socket goes in through `feed`; plaintext comes out of `readPlaintext`; plaintext goes in
/// through `writePlaintext`; ciphertext for the socket comes out of `takeCiphertext`.
///
/// Contract for the owner of the socket:
/// - after every `feed`, call `readPlaintext` (it also drives the handshake), then `takeCiphertext`;
/// - after every `writePlaintext` and `shutdown`, call `takeCiphertext`. The handshake, TLS 1.3 session tickets
///   and key updates produce ciphertext during reads, so draining only after writes would stall the peer;
/// - on `.failed`, take and send the ciphertext (usually an alert), then close.
///
/// Thread: the connection's loop thread only. The data-path methods allocate nothing beyond growing the
/// caller's arrays.
public protocol TLSChannel: AnyObject {
    func feed(ciphertext: UnsafeRawBufferPointer)
    func readPlaintext(into out: inout [UInt8]) -> TLSReadResult
    func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSWriteResult
    func takeCiphertext(into out: inout [UInt8])
    var hasCiphertext: Bool { get }
    func shutdown()
    var isHandshakeComplete: Bool { get }
    /// Frees OpenSSL's record buffers while the connection is idle (`SSL_free_buffers`; a no-op with data
    /// pending); the next record allocates them again.
    func releaseBuffers()
    /// The peer's verified client certificate subject, on the server side of mutual TLS; nil otherwise.
    var clientCertificateSubject: String? { get }
}

extension TLSChannel {
    public var clientCertificateSubject: String? { nil }
}

/// The memory-BIO plumbing both sides share. A value holding unowned pointers: the session that made it owns
/// the SSL (which owns both BIOs) and frees it.
struct TLSRecordIO {
    let ssl: OpaquePointer
    /// Owned by `ssl` (SSL_set_bio); freed with it.
    let readBIO: OpaquePointer
    let writeBIO: OpaquePointer

    /// A new SSL on `context` with its two memory BIOs; nil when OpenSSL cannot allocate them.
    static func make(_ context: OpaquePointer) -> TLSRecordIO? {
        guard let ssl = SSL_new(context) else { return nil }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_bio(ssl, readBIO, writeBIO)
        return TLSRecordIO(ssl: ssl, readBIO: readBIO, writeBIO: writeBIO)
    }

    /// How a read or write ended when it did not end well: `SSL_get_error`'s value, with OpenSSL's error queue
    /// left for the caller to drain into a `TLSError`.
    enum Outcome {
        case progress, wantMoreInput, closed
        case failed(sslError: Int32)
    }

    func feed(ciphertext: UnsafeRawBufferPointer) {
        var rest = ciphertext
        while !rest.isEmpty {
            let chunk = min(rest.count, Int(Int32.max))
            let written = BIO_write(readBIO, rest.baseAddress, Int32(chunk))
            // A memory BIO fails only when it cannot grow, i.e. out of memory.
            precondition(written == chunk, "OpenSSL could not buffer \(chunk) bytes of ciphertext")
            rest = UnsafeRawBufferPointer(rebasing: rest[chunk...])
        }
    }

    func readPlaintext(into out: inout [UInt8]) -> Outcome {
        let ssl = self.ssl
        var appended = false
        while true {
            let pending = Int(SSL_pending(ssl))
            let waiting = Int(lb_BIO_pending(readBIO))
            // Everything fed has been consumed (a partial record cannot complete without more): done, without
            // another SSL_read. Before any progress, SSL_read still runs: it drives the handshake.
            if appended && pending == 0 && waiting == 0 { return .progress }
            // Room for this read: what the current record still holds, else at most the ciphertext waiting
            // (plaintext is never longer), capped at one record. Too small a guess costs one more turn.
            let room = pending > 0 ? pending : min(Self.maxRecordPlaintext, max(waiting, 512))
            var result: Int32 = 0
            ERR_clear_error()
            out.append(addingCapacity: room) { span in
                span.withUnsafeMutableBufferPointer { bytes, initialized in
                    result = SSL_read(ssl, bytes.baseAddress, Int32(bytes.count))
                    if result > 0 { initialized = Int(result) }
                }
            }
            if result > 0 {
                appended = true
                continue
            }
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ: return appended ? .progress : .wantMoreInput
            case SSL_ERROR_ZERO_RETURN: return .closed
            case let error: return .failed(sslError: error)
            }
        }
    }

    func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var rest = bytes
        while !rest.isEmpty {
            let chunk = min(rest.count, Int(Int32.max))
            ERR_clear_error()
            let written = SSL_write(ssl, rest.baseAddress, Int32(chunk))
            if written <= 0 {
                switch SSL_get_error(ssl, written) {
                case SSL_ERROR_WANT_READ: return .wantMoreInput
                case let error: return .failed(sslError: error)
                }
            }
            // Without partial-write mode, and with a write BIO that never fills, SSL_write takes it all.
            rest = UnsafeRawBufferPointer(rebasing: rest[Int(written)...])
        }
        return .progress
    }

    func takeCiphertext(into out: inout [UInt8]) {
        let count = Int(lb_BIO_pending(writeBIO))
        guard count > 0 else { return }
        let writeBIO = self.writeBIO
        out.append(addingCapacity: count) { span in
            span.withUnsafeMutableBufferPointer { bytes, initialized in
                initialized = max(0, Int(BIO_read(writeBIO, bytes.baseAddress, Int32(bytes.count))))
            }
        }
    }

    var hasCiphertext: Bool { lb_BIO_pending(writeBIO) > 0 }

    /// Queues close_notify. Does nothing before the handshake completes or after a failure: then there is no
    /// secure channel to close, and the socket is simply closed.
    func shutdown() {
        guard SSL_is_init_finished(ssl) == 1 else { return }
        ERR_clear_error()
        if SSL_shutdown(ssl) < 0 { ERR_clear_error() }
    }

    var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    /// Frees OpenSSL's record buffers (about 34 KB) of a connection that went idle; the next record allocates
    /// them again. Does nothing while they hold data.
    func releaseBuffers() { _ = SSL_free_buffers(ssl) }

    /// The negotiated version; nil until the handshake completes.
    var protocolVersion: TLSProtocolVersion? {
        guard isHandshakeComplete else { return nil }
        switch SSL_version(ssl) {
        case TLS1_3_VERSION: return .tls1_3
        case TLS1_2_VERSION: return .tls1_2
        default: return nil
        }
    }

    /// The negotiated cipher suite's OpenSSL name; nil until the handshake completes.
    var cipherName: String? {
        guard isHandshakeComplete, let cipher = SSL_get_current_cipher(ssl) else { return nil }
        return SSL_CIPHER_get_name(cipher).map { String(cString: $0) }
    }

    /// The protocol ALPN settled on ("http/1.1", "h2"); nil when none was.
    var negotiatedALPN: String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    /// TLS caps a record's plaintext at 2^14 bytes (RFC 8446 section 5.1).
    static let maxRecordPlaintext = 16_384
}

/// OpenSSL's "app data" ex_data slot, reserved at index 0 without registration: each session stores itself
/// there (unretained) so a callback can find it.
let sessionExDataIndex: Int32 = 0

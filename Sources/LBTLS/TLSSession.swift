import COpenSSL

/// What `TLSSession.readPlaintext` did.
public enum TLSReadResult: Equatable, Sendable {
    /// Plaintext was appended to the caller's buffer.
    case progress
    /// Nothing to hand up yet (handshake under way, or a record incomplete): feed more ciphertext. The
    /// handshake may have advanced and produced ciphertext to send.
    case wantMoreInput
    /// The peer sent close_notify; plaintext before it has been appended. Writing still works (a response may
    /// finish); answer with `shutdown()` when done.
    case closed
    /// The connection is unusable. Ciphertext the session holds (an alert) should still be sent.
    case failed(TLSError)
}

/// What `TLSSession.writePlaintext` did.
public enum TLSWriteResult: Equatable, Sendable {
    /// Every byte was encrypted; the records wait in the session for `takeCiphertext`.
    case done
    /// The handshake is not finished; nothing was written. Write again once it is.
    case wantMoreInput
    case failed(TLSError)
}

/// One TLS connection, server side, without I/O: an SSL object between two memory BIOs. Ciphertext from the
/// socket goes in through `feed`; plaintext comes out of `readPlaintext`; plaintext goes in through
/// `writePlaintext`; ciphertext for the socket comes out of `takeCiphertext`.
///
/// Contract for the owner of the socket:
/// - after every `feed`, call `readPlaintext` (it also drives the handshake), then `takeCiphertext`;
/// - after every `writePlaintext` and `shutdown`, call `takeCiphertext`. The handshake, TLS 1.3 session tickets
///   and key updates produce ciphertext during reads, so draining only after writes would stall the peer;
/// - on `.failed`, take and send the ciphertext (usually an alert), then close.
///
/// Thread: the connection's loop thread only (not Sendable). The data-path methods allocate nothing beyond
/// growing the caller's arrays. The session keeps its context alive, so the context's callbacks stay valid.
/// Memory: the BIOs keep their high-water capacity, so feed at most one socket read at a time.
public final class TLSSession {
    public let context: TLSServerContext
    let ssl: OpaquePointer
    /// Owned by `ssl` (SSL_set_bio); freed with it.
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    /// Set when strict SNI refused the client's server name, so the error can say so instead of OpenSSL's
    /// generic "callback failed".
    private var refusedServerName = false
    /// The verified client certificate's subject, read once after the handshake (see `clientCertificateSubject`).
    var clientSubject: ClientSubject = .unread

    /// A fresh server-side session starting from the context's default certificate.
    public init(context: TLSServerContext) throws(TLSError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.defaultSSLContext) else {
            throw TLSError.drainingQueue(sslError: SSL_ERROR_SSL)
        }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.drainingQueue(sslError: SSL_ERROR_SSL)
        }
        SSL_set_bio(ssl, readBIO, writeBIO)
        SSL_set_accept_state(ssl)
        self.context = context
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        // The SNI callback's way back to this session (see TLSCallbacks); the session owns `ssl`, so the
        // unretained pointer is valid whenever OpenSSL can use it.
        SSL_set_ex_data(ssl, Self.exDataIndex, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { SSL_free(ssl) }

    // MARK: data path

    /// Appends ciphertext from the socket. The bytes are copied; the caller's buffer is free on return.
    public func feed(ciphertext: UnsafeRawBufferPointer) {
        var rest = ciphertext
        while !rest.isEmpty {
            let chunk = min(rest.count, Int(Int32.max))
            let written = BIO_write(readBIO, rest.baseAddress, Int32(chunk))
            // A memory BIO fails only when it cannot grow, i.e. out of memory.
            precondition(written == chunk, "OpenSSL could not buffer \(chunk) bytes of ciphertext")
            rest = UnsafeRawBufferPointer(rebasing: rest[chunk...])
        }
    }

    /// Decrypts everything the fed ciphertext holds, appending it to `out`; drives the handshake first.
    public func readPlaintext(into out: inout [UInt8]) -> TLSReadResult {
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
            case let error: return .failed(failure(error))
            }
        }
    }

    /// Encrypts all of `bytes` into records waiting for `takeCiphertext`.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSWriteResult {
        var rest = bytes
        while !rest.isEmpty {
            let chunk = min(rest.count, Int(Int32.max))
            ERR_clear_error()
            let written = SSL_write(ssl, rest.baseAddress, Int32(chunk))
            if written <= 0 {
                switch SSL_get_error(ssl, written) {
                case SSL_ERROR_WANT_READ: return .wantMoreInput
                case let error: return .failed(failure(error))
                }
            }
            // Without partial-write mode, and with a write BIO that never fills, SSL_write takes it all.
            rest = UnsafeRawBufferPointer(rebasing: rest[Int(written)...])
        }
        return .done
    }

    /// Moves every byte of ciphertext the session holds to the end of `out`.
    public func takeCiphertext(into out: inout [UInt8]) {
        let count = Int(lb_BIO_pending(writeBIO))
        guard count > 0 else { return }
        let writeBIO = self.writeBIO
        out.append(addingCapacity: count) { span in
            span.withUnsafeMutableBufferPointer { bytes, initialized in
                initialized = max(0, Int(BIO_read(writeBIO, bytes.baseAddress, Int32(bytes.count))))
            }
        }
    }

    /// Whether `takeCiphertext` has anything to move.
    public var hasCiphertext: Bool { lb_BIO_pending(writeBIO) > 0 }

    /// Queues close_notify (take it with `takeCiphertext`). Does nothing before the handshake completes or after
    /// a failure: then there is no secure channel to close, and the socket is simply closed.
    public func shutdown() {
        guard SSL_is_init_finished(ssl) == 1 else { return }
        ERR_clear_error()
        if SSL_shutdown(ssl) < 0 { ERR_clear_error() }
    }

    private func failure(_ sslError: Int32) -> TLSError {
        TLSError.drainingQueue(
            sslError: sslError, refusedServerName: refusedServerName, verifyResult: SSL_get_verify_result(ssl))
    }

    // MARK: handshake callbacks

    /// OpenSSL's "app data" ex_data slot, reserved at index 0 without registration.
    static let exDataIndex: Int32 = 0

    /// SNI: presents the certificate whose DNS names cover the client's server name, else the default, else
    /// (strict SNI) refuses with unrecognized_name (RFC 6066 section 3). Returns an SSL_TLSEXT_ERR_* value.
    func selectCertificate(alert: UnsafeMutablePointer<Int32>) -> Int32 {
        let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)
        guard let index = context.certificate(forServerName: name) else {
            guard context.config.strictSNI else { return SSL_TLSEXT_ERR_OK }
            refusedServerName = true
            alert.pointee = SSL_AD_UNRECOGNIZED_NAME
            return SSL_TLSEXT_ERR_ALERT_FATAL
        }
        guard index != context.config.defaultCertificate else { return SSL_TLSEXT_ERR_OK }
        let chosen = context.sslContexts[index]
        if SSL_set_SSL_CTX(ssl, chosen) == nil {
            alert.pointee = SSL_AD_INTERNAL_ERROR
            return SSL_TLSEXT_ERR_ALERT_FATAL
        }
        // SSL_set_SSL_CTX swaps the certificate, and the CA store and CA names follow the new SSL_CTX, but the
        // verify mode and depth stay those SSL_new copied from the default SSL_CTX. Every SSL_CTX of a context
        // has the same ones; taking the chosen one's makes that invariant not load-bearing.
        SSL_set_verify(ssl, SSL_CTX_get_verify_mode(chosen), SSL_CTX_get_verify_callback(chosen))
        SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(chosen))
        return SSL_TLSEXT_ERR_OK
    }

    // MARK: control plane (may allocate)

    public var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    /// The protocol ALPN settled on ("http/1.1", "h2"); nil when the client offered none.
    public var negotiatedALPN: String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    /// The server name the client sent (SNI), whether or not a certificate matched it.
    public var serverName: String? {
        SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
    }

    /// The negotiated version; nil until the handshake completes.
    public var protocolVersion: TLSProtocolVersion? {
        guard isHandshakeComplete else { return nil }
        switch SSL_version(ssl) {
        case TLS1_3_VERSION: return .tls1_3
        case TLS1_2_VERSION: return .tls1_2
        default: return nil
        }
    }

    /// The negotiated cipher suite's OpenSSL name; nil until the handshake completes.
    public var cipherName: String? {
        guard isHandshakeComplete, let cipher = SSL_get_current_cipher(ssl) else { return nil }
        return SSL_CIPHER_get_name(cipher).map { String(cString: $0) }
    }

    /// Whether the handshake resumed an earlier session (ticket or cache) instead of a full key exchange.
    public var isResumed: Bool { SSL_session_reused(ssl) == 1 }

    /// Index into `context.certificates` of the certificate presented (after SNI).
    public var certificateIndex: Int? { SSL_get_SSL_CTX(ssl).flatMap(context.certificateIndex(of:)) }

    /// TLS caps a record's plaintext at 2^14 bytes (RFC 8446 section 5.1).
    static let maxRecordPlaintext = 16_384
}

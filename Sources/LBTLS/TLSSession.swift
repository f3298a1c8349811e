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

/// One TLS connection, server side, without I/O: an SSL object between two memory BIOs (`TLSChannel` gives the
/// contract for the owner of the socket).
///
/// Thread: the connection's loop thread only (not Sendable). The session keeps its context alive, so the
/// context's callbacks stay valid. Memory: the BIOs keep their high-water capacity, so feed at most one socket
/// read at a time.
public final class TLSSession: TLSChannel {
    public let context: TLSServerContext
    private let io: TLSRecordIO
    var ssl: OpaquePointer { io.ssl }
    /// Set when strict SNI refused the client's server name, so the error can say so instead of OpenSSL's
    /// generic "callback failed".
    private var refusedServerName = false
    /// The verified client certificate's subject, read once after the handshake (see `clientCertificateSubject`).
    var clientSubject: ClientSubject = .unread

    /// A fresh server-side session starting from the context's default certificate.
    public init(context: TLSServerContext) throws(TLSError) {
        ERR_clear_error()
        guard let io = TLSRecordIO.make(context.defaultSSLContext) else {
            throw TLSError.drainingQueue(sslError: SSL_ERROR_SSL)
        }
        SSL_set_accept_state(io.ssl)
        self.context = context
        self.io = io
        // The SNI callback's way back to this session (see TLSCallbacks); the session owns `ssl`, so the
        // unretained pointer is valid whenever OpenSSL can use it.
        SSL_set_ex_data(io.ssl, sessionExDataIndex, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { SSL_free(io.ssl) }

    // MARK: data path

    /// Appends ciphertext from the socket. The bytes are copied; the caller's buffer is free on return.
    public func feed(ciphertext: UnsafeRawBufferPointer) { io.feed(ciphertext: ciphertext) }

    /// Decrypts everything the fed ciphertext holds, appending it to `out`; drives the handshake first.
    public func readPlaintext(into out: inout [UInt8]) -> TLSReadResult {
        switch io.readPlaintext(into: &out) {
        case .progress: .progress
        case .wantMoreInput: .wantMoreInput
        case .closed: .closed
        case .failed(let sslError): .failed(failure(sslError))
        }
    }

    /// Encrypts all of `bytes` into records waiting for `takeCiphertext`.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSWriteResult {
        switch io.writePlaintext(bytes) {
        case .progress, .closed: .done
        case .wantMoreInput: .wantMoreInput
        case .failed(let sslError): .failed(failure(sslError))
        }
    }

    /// Moves every byte of ciphertext the session holds to the end of `out`.
    public func takeCiphertext(into out: inout [UInt8]) { io.takeCiphertext(into: &out) }

    /// Frees the record buffers of a connection that went idle (`TLSRecordIO.releaseBuffers`).
    public func releaseBuffers() { io.releaseBuffers() }

    /// Whether `takeCiphertext` has anything to move.
    public var hasCiphertext: Bool { io.hasCiphertext }

    /// Queues close_notify (take it with `takeCiphertext`). Does nothing before the handshake completes or after
    /// a failure: then there is no secure channel to close, and the socket is simply closed.
    public func shutdown() { io.shutdown() }

    private func failure(_ sslError: Int32) -> TLSError {
        TLSError.drainingQueue(
            sslError: sslError, refusedServerName: refusedServerName, verifyResult: SSL_get_verify_result(ssl))
    }

    // MARK: handshake callbacks

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

    /// ClientHello, before OpenSSL looks for a session to resume: binds this handshake's session id context to
    /// the server name asked for, so only a session made under that name resumes.
    func bindSessionToServerName() {
        var data: UnsafePointer<UInt8>?
        var length = 0
        var name: UnsafeRawBufferPointer?
        if SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_server_name), &data, &length) == 1, let data {
            // server_name_list: 2-byte length, then entries of type (1 byte), 2-byte length, name.
            let ext = UnsafeBufferPointer(start: data, count: length)
            if ext.count >= 5 && ext[2] == 0 {
                let nameLength = Int(ext[3]) << 8 | Int(ext[4])
                if 5 + nameLength <= ext.count {
                    name = UnsafeRawBufferPointer(start: data + 5, count: nameLength)
                }
            }
        }
        let ssl = self.ssl
        _ = TLSServerContext.withSessionIDContext(base: context.sessionIDContextBase, serverName: name) {
            SSL_set_session_id_context(ssl, $0.baseAddress, UInt32($0.count))
        }
    }

    // MARK: control plane (may allocate)

    public var isHandshakeComplete: Bool { io.isHandshakeComplete }

    /// The protocol ALPN settled on ("http/1.1", "h2"); nil when the client offered none.
    public var negotiatedALPN: String? { io.negotiatedALPN }

    /// The server name the client sent (SNI), whether or not a certificate matched it.
    public var serverName: String? {
        SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
    }

    /// The negotiated version; nil until the handshake completes.
    public var protocolVersion: TLSProtocolVersion? { io.protocolVersion }

    /// The negotiated cipher suite's OpenSSL name; nil until the handshake completes.
    public var cipherName: String? { io.cipherName }

    /// Whether the handshake resumed an earlier session (ticket or cache) instead of a full key exchange.
    public var isResumed: Bool { SSL_session_reused(ssl) == 1 }

    /// Index into `context.certificates` of the certificate presented (after SNI).
    public var certificateIndex: Int? { SSL_get_SSL_CTX(ssl).flatMap(context.certificateIndex(of:)) }
}

import COpenSSL

/// Protocol settings: Mozilla's "intermediate" server profile (https://wiki.mozilla.org/Security/Server_Side_TLS,
/// version 5.7), which every browser and HTTP client of the last decade accepts.
extension TLSServerContext {
    /// TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 suites are set separately.
    static let tls12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    static let tls13Ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    static let groups = "X25519:P-256:P-384"
    /// A session resumes only on an SSL_CTX with the same session id context (OpenSSL also refuses to resume
    /// without one once client certificates are verified). Ticket keys outlive a reload and a key file may be
    /// shared by several listeners, so the id context names the client-certificate settings: a session made
    /// without a client certificate (no mTLS, or `optional`) never resumes where one is required, nor one
    /// verified against one CA file where another is configured. SHA-256 of the settings, cut to the 32 bytes
    /// OpenSSL keeps.
    ///
    /// Each handshake then narrows it to the server name the client asks for (`withSessionIDContext`, from the
    /// ClientHello callback), so a session resumes only under the name it was made for: RFC 6066 section 3
    /// forbids resuming a TLS 1.2 session under another name, which OpenSSL 3.0 does not enforce.
    static func sessionIDContext(_ config: TLSServerConfig) -> [UInt8] {
        var text = "lb-tls"
        if let client = config.clientCertificates {
            text += "|client-certificates|\(client.mode)|\(client.verifyDepth)|\(client.caFile)"
        }
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = EVP_Digest(text, text.utf8.count, &digest, &length, EVP_sha256(), nil)
        return digest
    }

    /// The session id context for a handshake asking for `serverName`: SHA-256 of `base` and the name in lower
    /// case (no name: `base` alone), handed to `body`. Every handshake runs it, so it uses stack memory only.
    static func withSessionIDContext<R>(
        base: [UInt8], serverName: UnsafeRawBufferPointer?, _ body: (UnsafeBufferPointer<UInt8>) -> R
    ) -> R {
        guard let serverName, !serverName.isEmpty else { return base.withUnsafeBufferPointer(body) }
        let nameLength = min(serverName.count, 255)
        let inputLength = base.count + nameLength
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: inputLength + 32) { buffer in
            let input = buffer.baseAddress!
            _ = UnsafeMutableBufferPointer(start: input, count: base.count).initialize(from: base)
            for i in 0..<nameLength {
                let b = serverName[i]
                (input + base.count + i).initialize(to: b >= 65 && b <= 90 ? b + 32 : b)
            }
            let digest = input + inputLength
            var length: UInt32 = 0
            guard EVP_Digest(input, inputLength, digest, &length, EVP_sha256(), nil) == 1 else {
                return base.withUnsafeBufferPointer(body)
            }
            return body(UnsafeBufferPointer(start: digest, count: Int(length)))
        }
    }

    /// One SSL_CTX for `certificate`, fully configured except for the callbacks (which need the finished
    /// context object). The caller owns the result and frees it with SSL_CTX_free.
    static func makeSSLContext(
        _ certificate: LoadedCertificate, config: TLSServerConfig, clientAuthorities: ClientCertificateAuthorities?,
    ) throws(TLSConfigError) -> OpaquePointer {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw TLSConfigError(.libraryFailure, file: nil, "cannot create an OpenSSL context: \(openSSLErrorText())")
        }
        do throws(TLSConfigError) {
            try configureProtocol(context, config: config)
            try useCertificate(context, certificate)
            try configureResumption(context, config: config)
            if let settings = config.clientCertificates, let clientAuthorities {
                try requestClientCertificates(context, settings, clientAuthorities)
            }
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        return context
    }

    private static func configureProtocol(_ context: OpaquePointer, config: TLSServerConfig) throws(TLSConfigError) {
        let minimum = config.minimumVersion == .tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION
        // Renegotiation is a DoS lever and has no use for a proxy; compression is CRIME (CVE-2012-4929).
        // The server's order decides (testssl.sh rates a server without one HIGH, whatever its suites), except
        // that ChaCha20 moves first for a client that lists it first: such a client lacks AES hardware, which is
        // what the intermediate profile's "client chooses" was for.
        var options = lb_SSL_OP_NO_RENEGOTIATION | lb_SSL_OP_NO_COMPRESSION
            | lb_SSL_OP_CIPHER_SERVER_PREFERENCE | lb_SSL_OP_PRIORITIZE_CHACHA
        if !config.sessionTickets { options |= lb_SSL_OP_NO_TICKET }
        _ = SSL_CTX_set_options(context, options)
        // Moving write buffer: a write retried after want-read may come from a different (reallocated) array.
        // Not SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the 34 KB of record buffers around every record,
        // which cost a busy keep-alive connection 7-15% more CPU per request here. A connection that goes idle
        // gives them back instead (`TLSSession.releaseBuffers()`, called by its owner).
        _ = lb_SSL_CTX_set_mode(context, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        guard lb_SSL_CTX_set_min_proto_version(context, minimum) == 1,
            SSL_CTX_set_cipher_list(context, tls12Ciphers) == 1,
            SSL_CTX_set_ciphersuites(context, tls13Ciphersuites) == 1,
            lb_SSL_CTX_set1_groups_list(context, groups) == 1
        else {
            throw TLSConfigError(
                .libraryFailure, file: nil,
                "this OpenSSL does not accept the TLS protocol settings: \(openSSLErrorText())")
        }
    }

    static func useCertificate(
        _ context: OpaquePointer, _ certificate: LoadedCertificate
    ) throws(TLSConfigError) {
        let file = certificate.files.certificateChain
        guard SSL_CTX_use_certificate(context, certificate.leaf) == 1 else {
            throw TLSConfigError(
                .refusedByOpenSSL, file: file,
                "OpenSSL refused the certificate in \(file): \(openSSLErrorText())")
        }
        for (i, intermediate) in certificate.chain.enumerated()
        where lb_SSL_CTX_add1_chain_cert(context, intermediate) != 1 {
            throw TLSConfigError(
                .refusedByOpenSSL, file: file,
                "OpenSSL refused chain certificate \(i + 2) in \(file): \(openSSLErrorText())")
        }
        guard SSL_CTX_use_PrivateKey(context, certificate.key) == 1, SSL_CTX_check_private_key(context) == 1 else {
            let keyFile = certificate.files.privateKey
            throw TLSConfigError(
                .refusedByOpenSSL, file: keyFile,
                "OpenSSL refused the private key in \(keyFile): \(openSSLErrorText())")
        }
    }

    private static func configureResumption(
        _ context: OpaquePointer, config: TLSServerConfig
    ) throws(TLSConfigError) {
        let cached = config.sessionCacheSize > 0
        _ = lb_SSL_CTX_set_session_cache_mode(context, Int(cached ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF))
        // OpenSSL reads a cache size of 0 as "unlimited"; ours means "off", handled by the mode above.
        if cached { _ = lb_SSL_CTX_sess_set_cache_size(context, config.sessionCacheSize) }
        _ = SSL_CTX_set_timeout(context, Int(config.sessionLifetimeSeconds))
        // With tickets off, TLS 1.3 still sends one ticket, but a stateful one naming a cached session.
        let resumable = config.sessionTickets || cached
        guard SSL_CTX_set_num_tickets(context, resumable ? 1 : 0) == 1,
            sessionIDContext(config).withUnsafeBufferPointer({
                SSL_CTX_set_session_id_context(context, $0.baseAddress, UInt32($0.count))
            }) == 1,
            // Tickets are sealed and opened with the context's `TLSTicketKeys` (which key, and rotation).
            SSL_CTX_set_tlsext_ticket_key_evp_cb(context, TLSCallbacks.ticketKey) == 1
        else {
            throw TLSConfigError(
                .libraryFailure, file: nil, "OpenSSL refused the session resumption settings: \(openSSLErrorText())")
        }
    }
}

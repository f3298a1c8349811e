import COpenSSL
import Glibc

/// The OpenSSL state for TLS connections to backends with one `TLSClientConfig`: one client SSL_CTX with the
/// trust store, the client certificate if any, and the protocol settings. Built on the control thread, then
/// shared read-only by every worker, which make a `TLSClientSession` from it per connection.
///
/// `@unchecked Sendable`: after `init` nothing changes. Workers use the SSL_CTX only through `SSL_new` and
/// the handshake, which OpenSSL documents as safe to share between threads. Sessions for resumption are not
/// kept in the SSL_CTX (its internal cache is off) but in each worker's `TLSClientSessionCache`.
public final class TLSClientContext: @unchecked Sendable {
    public let config: TLSClientConfig
    let sslContext: OpaquePointer

    /// Loads the trust store and the client certificate, throwing naming the file and the problem.
    public convenience init(config: TLSClientConfig) throws(TLSConfigError) {
        try self.init(config: config, now: Int(time(nil)))
    }

    init(config: TLSClientConfig, now: Int) throws(TLSConfigError) {
        for name in config.alpnProtocols where name.utf8.isEmpty || name.utf8.count > 255 {
            throw TLSConfigError(
                .invalidSetting, file: nil,
                "TLS ALPN protocol name \"\(name)\" must be 1 to 255 bytes long (RFC 7301 section 3.1)")
        }
        let certificate = try config.clientCertificate.map { (files) throws(TLSConfigError) in
            try LoadedCertificate.load(files, now: now)
        }
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw TLSConfigError(.libraryFailure, file: nil, "cannot create an OpenSSL context: \(openSSLErrorText())")
        }
        do throws(TLSConfigError) {
            try Self.configureProtocol(context, config: config)
            try Self.configureTrust(context, config: config)
            if let certificate { try TLSServerContext.useCertificate(context, certificate) }
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        self.config = config
        self.sslContext = context
        if config.sessionReuse {
            // Client sessions (TLS 1.2 ids and tickets, TLS 1.3 tickets, which arrive after the handshake) are
            // handed to the callback, which keeps them per worker and backend; OpenSSL keeps none itself.
            _ = lb_SSL_CTX_set_session_cache_mode(
                context, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
            SSL_CTX_sess_set_new_cb(context, TLSCallbacks.newClientSession)
        } else {
            _ = lb_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_OFF))
            _ = SSL_CTX_set_options(context, lb_SSL_OP_NO_TICKET)
        }
    }

    deinit { SSL_CTX_free(sslContext) }

    private static func configureProtocol(_ context: OpaquePointer, config: TLSClientConfig) throws(TLSConfigError) {
        let minimum = config.minimumVersion == .tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION
        _ = SSL_CTX_set_options(context, lb_SSL_OP_NO_RENEGOTIATION | lb_SSL_OP_NO_COMPRESSION)
        // Not SSL_MODE_RELEASE_BUFFERS, as on the server side: a pooled connection gives its record buffers back
        // once idle (`TLSClientSession.releaseBuffers()`), not around every record.
        _ = lb_SSL_CTX_set_mode(context, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        var wire: [UInt8] = []
        for name in config.alpnProtocols {
            wire.append(UInt8(name.utf8.count))
            wire.append(contentsOf: name.utf8)
        }
        guard lb_SSL_CTX_set_min_proto_version(context, minimum) == 1,
            SSL_CTX_set_cipher_list(context, TLSServerContext.tls12Ciphers) == 1,
            SSL_CTX_set_ciphersuites(context, TLSServerContext.tls13Ciphersuites) == 1,
            lb_SSL_CTX_set1_groups_list(context, TLSServerContext.groups) == 1,
            // SSL_CTX_set_alpn_protos alone returns 0 on success.
            wire.isEmpty || SSL_CTX_set_alpn_protos(context, wire, UInt32(wire.count)) == 0
        else {
            throw TLSConfigError(
                .libraryFailure, file: nil,
                "this OpenSSL does not accept the TLS protocol settings: \(openSSLErrorText())")
        }
    }

    private static func configureTrust(_ context: OpaquePointer, config: TLSClientConfig) throws(TLSConfigError) {
        guard config.verify else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            return
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let file = config.caFile {
            // The shared reader: the same checks and messages as every other PEM file lb loads.
            let authorities = try LoadedCertificate.readCertificates(
                file, what: "backend CA", order: "the authorities backend certificates chain to")
            defer { for certificate in authorities { X509_free(certificate) } }
            let store = SSL_CTX_get_cert_store(context)
            for (i, certificate) in authorities.enumerated() where X509_STORE_add_cert(store, certificate) != 1 {
                throw TLSConfigError(
                    .refusedByOpenSSL, file: file,
                    "OpenSSL refused certificate \(i + 1) of the TLS backend CA file \(file): \(openSSLErrorText())")
            }
        } else if SSL_CTX_set_default_verify_paths(context) != 1 {
            throw TLSConfigError(
                .libraryFailure, file: nil, "cannot load the system's trusted certificates: \(openSSLErrorText())")
        }
    }
}

/// The session to resume on the next connection to one backend, from one worker: the latest a server gave
/// (TLS 1.3 sends tickets after the handshake, so this is filled by a callback, not read after connecting).
/// Loop thread only.
public final class TLSClientSessionCache {
    /// Owned reference (SSL_SESSION_free on replace).
    private var session: OpaquePointer?

    public init() {}

    deinit { if let session { SSL_SESSION_free(session) } }

    /// Takes ownership of `new`.
    func replace(with new: OpaquePointer) {
        if let session { SSL_SESSION_free(session) }
        session = new
    }

    /// Forgets the session (after a failed handshake with it, or when the server's settings changed).
    public func clear() {
        if let session { SSL_SESSION_free(session) }
        session = nil
    }

    var current: OpaquePointer? { session }
}

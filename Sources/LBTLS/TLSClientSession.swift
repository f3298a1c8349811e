import COpenSSL
import Glibc

/// One TLS connection to a backend, client side, without I/O (`TLSChannel` gives the contract). The first
/// `readPlaintext` call, with nothing fed, writes the ClientHello.
///
/// Thread: the connection's loop thread only. The session keeps its context alive.
public final class TLSClientSession: TLSChannel {
    public let context: TLSClientContext
    private let io: TLSRecordIO
    /// Where sessions the server gives are kept for the next connection; nil: this one is not resumed later.
    private let cache: TLSClientSessionCache?

    /// - Parameters:
    ///   - serverName: sent as SNI; nil sends none (RFC 6066 section 3 forbids IP addresses there).
    ///   - verifyName: the DNS name or IP address the backend's certificate must carry (when the context
    ///     verifies).
    ///   - cache: the session to offer, and where the new one goes.
    public init(
        context: TLSClientContext, serverName: String?, verifyName: String, cache: TLSClientSessionCache?
    ) throws(TLSError) {
        ERR_clear_error()
        guard let io = TLSRecordIO.make(context.sslContext) else {
            throw TLSError.drainingQueue(sslError: SSL_ERROR_SSL)
        }
        SSL_set_connect_state(io.ssl)
        self.context = context
        self.io = io
        self.cache = context.config.sessionReuse ? cache : nil
        // The new-session callback's way back to this session; the session owns the SSL.
        SSL_set_ex_data(io.ssl, sessionExDataIndex, Unmanaged.passUnretained(self).toOpaque())
        if let serverName, lb_SSL_set_tlsext_host_name(io.ssl, serverName) != 1 {
            throw TLSError.drainingQueue(sslError: SSL_ERROR_SSL)
        }
        if context.config.verify {
            let ok: Bool
            if Self.isIPAddress(verifyName) {
                ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(io.ssl), verifyName) == 1
            } else {
                SSL_set_hostflags(io.ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                ok = SSL_set1_host(io.ssl, verifyName) == 1
            }
            if !ok { throw TLSError.drainingQueue(sslError: SSL_ERROR_SSL) }
        }
        // OpenSSL marks a session unresumable when its connection ended without close_notify: then it is not
        // offered, and this connection makes a fresh one.
        if let resumable = self.cache?.current, SSL_SESSION_is_resumable(resumable) == 1 {
            _ = SSL_set_session(io.ssl, resumable)
        }
    }

    deinit { SSL_free(io.ssl) }

    public func feed(ciphertext: UnsafeRawBufferPointer) { io.feed(ciphertext: ciphertext) }

    public func readPlaintext(into out: inout [UInt8]) -> TLSReadResult {
        switch io.readPlaintext(into: &out) {
        case .progress: return .progress
        case .wantMoreInput: return .wantMoreInput
        case .closed: return .closed
        case .failed(let sslError):
            // A session that failed to resume is not offered again.
            if !isHandshakeComplete { cache?.clear() }
            return .failed(TLSError.drainingQueue(sslError: sslError, verifyResult: verifyResult, isClientSide: true))
        }
    }

    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSWriteResult {
        switch io.writePlaintext(bytes) {
        case .progress, .closed: .done
        case .wantMoreInput: .wantMoreInput
        case .failed(let sslError): .failed(TLSError.drainingQueue(sslError: sslError, isClientSide: true))
        }
    }

    public func takeCiphertext(into out: inout [UInt8]) { io.takeCiphertext(into: &out) }
    public var hasCiphertext: Bool { io.hasCiphertext }
    public func shutdown() { io.shutdown() }
    public var isHandshakeComplete: Bool { io.isHandshakeComplete }
    /// Frees the record buffers of a pooled connection that went idle (`TLSRecordIO.releaseBuffers`).
    public func releaseBuffers() { io.releaseBuffers() }

    /// Whether the handshake resumed an earlier session instead of a full key exchange.
    public var isResumed: Bool { SSL_session_reused(io.ssl) == 1 }
    public var protocolVersion: TLSProtocolVersion? { io.protocolVersion }
    public var cipherName: String? { io.cipherName }
    public var negotiatedALPN: String? { io.negotiatedALPN }

    /// The certificate check's verdict (X509_V_OK = 0 when it passed or nothing was checked yet).
    var verifyResult: Int { SSL_get_verify_result(io.ssl) }

    // MARK: callbacks

    /// A session the server just gave (new-session callback). Returns 1 when it was kept (the reference is
    /// then ours), 0 to let OpenSSL free it.
    func keep(_ session: OpaquePointer) -> Int32 {
        guard let cache else { return 0 }
        cache.replace(with: session)
        return 1
    }

    /// True for an IPv4 or IPv6 literal: those are checked against the certificate's IP SANs, never sent as SNI.
    public static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

import COpenSSL

/// A TLS failure on a connection: the handshake was refused or the peer sent something that is not valid TLS.
/// The connection cannot continue; ciphertext the session still holds (usually an alert) should be sent before
/// the socket is closed.
///
/// Built on the data path, so it only stores numbers; `description` turns them into OpenSSL's reason text
/// ("no shared cipher", "wrong version number") when someone logs it.
public struct TLSError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `SSL_get_error`'s classification: `SSL_ERROR_SSL` for protocol errors, `SSL_ERROR_SYSCALL` otherwise.
    public let sslError: Int32
    /// The earliest entry of OpenSSL's error queue when the call failed (the cause), or 0 if it was empty.
    public let code: UInt
    /// The latest entry, when it differs from `code` (what the failure led to), else 0.
    public let lastCode: UInt
    /// Strict SNI refused the handshake: the client sent no server name, or one no certificate covers.
    public let refusedServerName: Bool
    /// The peer certificate's verification result (an X509_V_ERR_* code; 0 when it verified, or when none was
    /// verified): the client's certificate on lb's server side, the backend's on lb's client side.
    public let verifyResult: Int
    /// The failure is on lb's client side (a connection to a backend), so a certificate that did not verify is
    /// the server's.
    public let isClientSide: Bool

    init(
        sslError: Int32, code: UInt, lastCode: UInt, refusedServerName: Bool = false, verifyResult: Int = 0,
        isClientSide: Bool = false
    ) {
        self.sslError = sslError
        self.code = code
        self.lastCode = lastCode
        self.refusedServerName = refusedServerName
        self.verifyResult = verifyResult
        self.isClientSide = isClientSide
    }

    /// Takes every entry of this thread's OpenSSL error queue, leaving it empty for the next call.
    static func drainingQueue(
        sslError: Int32, refusedServerName: Bool = false, verifyResult: Int = 0, isClientSide: Bool = false
    ) -> TLSError {
        let first = ERR_get_error()
        var last: UInt = 0
        while true {
            let next = ERR_get_error()
            if next == 0 { break }
            last = next
        }
        return TLSError(
            sslError: sslError, code: first, lastCode: last == first ? 0 : last, refusedServerName: refusedServerName,
            verifyResult: verifyResult, isClientSide: isClientSide)
    }

    /// lb's client side: the backend's certificate did not verify (untrusted chain, wrong name, expired).
    public var isCertificateRejected: Bool { isClientSide && verifyResult != 0 }

    /// OpenSSL's reason for `code`, e.g. "unsupported protocol"; nil when the queue was empty.
    public var reason: String? { Self.reasonText(code) }

    /// The client spoke plain HTTP to the TLS port. A server may answer with a plaintext 400 before closing.
    public var isPlaintextHTTP: Bool {
        ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST
    }

    public var description: String {
        if refusedServerName {
            return "TLS refused: no certificate for the server name the client asked for (strict SNI)"
        }
        if isCertificateRejected, let text = X509_verify_cert_error_string(verifyResult) {
            return "TLS certificate verification failed: \(String(cString: text))"
        }
        if let refusal = clientCertificateRefusal {
            guard refusal != .missing else { return "TLS refused: the client presented no certificate (required)" }
            let why = X509_verify_cert_error_string(verifyResult).map { String(cString: $0) } ?? "\(verifyResult)"
            return "TLS refused the client certificate (\(refusal.name)): \(why)"
        }
        guard let reason else {
            return sslError == SSL_ERROR_SYSCALL
                ? "TLS failed without an OpenSSL reason (transport error)"
                : "TLS failed (SSL_get_error \(sslError), no OpenSSL reason)"
        }
        if let later = Self.reasonText(lastCode), later != reason { return "TLS failed: \(reason) (then: \(later))" }
        return "TLS failed: \(reason)"
    }

    /// Set when the handshake failed on the client's certificate: none presented where one is required, or one
    /// that did not verify (classified by `verifyResult`). Allocates nothing: counters read it per failure.
    public var clientCertificateRefusal: TLSClientCertificateRefusal? {
        clientCertificateRefusal(code) ?? clientCertificateRefusal(lastCode)
    }

    private func clientCertificateRefusal(_ entry: UInt) -> TLSClientCertificateRefusal? {
        guard !isClientSide, ERR_GET_LIB(entry) == ERR_LIB_SSL else { return nil }
        switch ERR_GET_REASON(entry) {
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: return .missing
        case SSL_R_CERTIFICATE_VERIFY_FAILED: return Self.refusal(verifyResult: Int32(truncatingIfNeeded: verifyResult))
        default: return nil
        }
    }

    private static func refusal(verifyResult: Int32) -> TLSClientCertificateRefusal {
        switch verifyResult {
        case X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_CERT_NOT_YET_VALID:
            return .expired
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
            X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_CERT_CHAIN_TOO_LONG, X509_V_ERR_CERT_UNTRUSTED:
            return .untrusted
        default:
            return .invalid
        }
    }

    static func reasonText(_ code: UInt) -> String? {
        guard code != 0 else { return nil }
        if let text = ERR_reason_error_string(code) { return String(cString: text) }
        return "OpenSSL error \(String(code, radix: 16))"
    }
}

/// The current error queue as one line of text for a configuration message ("" when empty). Control plane only.
func openSSLErrorText() -> String {
    let error = TLSError.drainingQueue(sslError: SSL_ERROR_SSL)
    guard let reason = error.reason else { return "" }
    if let later = TLSError.reasonText(error.lastCode), later != reason { return "\(reason); \(later)" }
    return reason
}

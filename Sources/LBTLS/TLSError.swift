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
    /// Client side: the peer's certificate failed verification with this X509_V_ERR_* value (0: it did not).
    public let verifyResult: Int

    init(sslError: Int32, code: UInt, lastCode: UInt, refusedServerName: Bool = false, verifyResult: Int = 0) {
        self.sslError = sslError
        self.code = code
        self.lastCode = lastCode
        self.refusedServerName = refusedServerName
        self.verifyResult = verifyResult
    }

    /// Takes every entry of this thread's OpenSSL error queue, leaving it empty for the next call.
    static func drainingQueue(sslError: Int32, refusedServerName: Bool = false, verifyResult: Int = 0) -> TLSError {
        let first = ERR_get_error()
        var last: UInt = 0
        while true {
            let next = ERR_get_error()
            if next == 0 { break }
            last = next
        }
        return TLSError(
            sslError: sslError, code: first, lastCode: last == first ? 0 : last, refusedServerName: refusedServerName,
            verifyResult: verifyResult)
    }

    /// The peer's certificate did not verify (untrusted chain, wrong name, expired).
    public var isCertificateRejected: Bool { verifyResult != 0 }

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
        if verifyResult != 0, let text = X509_verify_cert_error_string(verifyResult) {
            return "TLS certificate verification failed: \(String(cString: text))"
        }
        guard let reason else {
            return sslError == SSL_ERROR_SYSCALL
                ? "TLS failed without an OpenSSL reason (transport error)"
                : "TLS failed (SSL_get_error \(sslError), no OpenSSL reason)"
        }
        if let later = Self.reasonText(lastCode), later != reason { return "TLS failed: \(reason) (then: \(later))" }
        return "TLS failed: \(reason)"
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

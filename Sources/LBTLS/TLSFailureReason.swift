import COpenSSL

/// Why a TLS connection failed, in the few classes an operator acts on differently. Counted per class by the
/// server (`lb_tls_failures_total{reason}`); computed from the numbers a `TLSError` holds, so it allocates nothing.
public enum TLSFailureReason: Int, CaseIterable, Sendable {
    /// The client offered only protocol versions lb does not speak (TLS 1.1 or older, or below `min_version`).
    case protocolVersion
    /// No cipher suite, group or signature algorithm in common.
    case noSharedCipher
    /// Strict SNI: no certificate for the name the client asked for (or it sent none).
    case serverName
    /// ALPN: the client offered only protocols lb does not serve.
    case applicationProtocol
    /// A client certificate was required and missing, or did not verify.
    case clientCertificate
    /// Plain HTTP, or other bytes that are not TLS, sent to the TLS port.
    case notTLS
    /// The peer ended the handshake with an alert of its own (it distrusts lb's certificate, or gave up).
    case peerAlert
    /// A record that did not decrypt or is malformed, after or during the handshake.
    case badRecord
    /// The connection ended in the middle of the handshake or a record, without an alert.
    case truncated
    /// Anything else.
    case other

    /// As `/api/stats` and `/metrics` name it.
    public var name: String {
        switch self {
        case .protocolVersion: "protocol_version"
        case .noSharedCipher: "no_shared_cipher"
        case .serverName: "server_name"
        case .applicationProtocol: "application_protocol"
        case .clientCertificate: "client_certificate"
        case .notTLS: "not_tls"
        case .peerAlert: "peer_alert"
        case .badRecord: "bad_record"
        case .truncated: "truncated"
        case .other: "other"
        }
    }
}

extension TLSError {
    /// The class this failure counts under.
    public var failureReason: TLSFailureReason {
        if refusedServerName { return .serverName }
        if clientCertificateRefusal != nil { return .clientCertificate }
        if isPlaintextHTTP { return .notTLS }
        guard code != 0, ERR_GET_LIB(code) == ERR_LIB_SSL else {
            return sslError == SSL_ERROR_SYSCALL ? .truncated : .other
        }
        let reason = ERR_GET_REASON(code)
        // Alerts the peer sent are queued as SSL_R_ values offset by SSL_AD_REASON_OFFSET.
        if reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256 { return .peerAlert }
        switch reason {
        case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_VERSION_TOO_LOW: return .protocolVersion
        case SSL_R_NO_SHARED_CIPHER, SSL_R_NO_SHARED_GROUPS, SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM: return .noSharedCipher
        case SSL_R_NO_APPLICATION_PROTOCOL: return .applicationProtocol
        case SSL_R_WRONG_VERSION_NUMBER, SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST, SSL_R_UNKNOWN_PROTOCOL:
            return .notTLS
        case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC, SSL_R_RECORD_LENGTH_MISMATCH, SSL_R_PACKET_LENGTH_TOO_LONG,
            SSL_R_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_RECORD, SSL_R_BAD_RECORD_TYPE, SSL_R_LENGTH_MISMATCH:
            return .badRecord
        case SSL_R_UNEXPECTED_EOF_WHILE_READING: return .truncated
        default: return .other
        }
    }
}

import COpenSSL

/// Client certificates (mutual TLS) on one SSL_CTX.
extension TLSServerContext {
    /// The SSL_VERIFY_* flags for `mode`. SSL_VERIFY_PEER makes OpenSSL request a certificate and abort the
    /// handshake with an alert when one is presented and does not verify (there is no verify callback to
    /// overrule it), in both modes; FAIL_IF_NO_PEER_CERT also refuses a client that presents none.
    static func verifyFlags(_ mode: TLSClientCertificates.Mode) -> Int32 {
        switch mode {
        case .required: SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        case .optional: SSL_VERIFY_PEER
        }
    }

    /// Makes `context` request and verify client certificates against `authorities` only: their store
    /// replaces the context's (which never held the system's CAs), their subjects are the CA names sent in
    /// the certificate request, so a client with several certificates picks one these CAs issued.
    static func requestClientCertificates(
        _ context: OpaquePointer, _ settings: TLSClientCertificates, _ authorities: ClientCertificateAuthorities
    ) throws(TLSConfigError) {
        SSL_CTX_set1_cert_store(context, authorities.store)
        for (i, certificate) in authorities.certificates.enumerated()
        where SSL_CTX_add_client_CA(context, certificate) != 1 {
            throw TLSConfigError(
                .refusedByOpenSSL, file: authorities.file,
                "OpenSSL refused the name of certificate \(i + 1) of the TLS client CA file \(authorities.file): "
                    + openSSLErrorText())
        }
        SSL_CTX_set_verify(context, verifyFlags(settings.mode), nil)
        SSL_CTX_set_verify_depth(context, Int32(settings.verifyDepth))
    }
}

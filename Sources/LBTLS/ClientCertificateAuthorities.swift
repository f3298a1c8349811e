import COpenSSL

/// The CA certificates of a listener's client-certificate CA file, read and checked once per context build:
/// the file readable, at least one PEM certificate in it and no damaged block, every certificate a CA
/// certificate, and at least one of them a root. Owns one reference to each certificate and to one X509_STORE
/// holding them all, which every SSL_CTX of the listener shares (each takes its own reference), until it is
/// released.
final class ClientCertificateAuthorities {
    let file: String
    /// X509, in file order.
    let certificates: [OpaquePointer]
    /// X509_STORE with exactly `certificates` as trust anchors.
    let store: OpaquePointer

    private init(file: String, certificates: [OpaquePointer], store: OpaquePointer) {
        self.file = file
        self.certificates = certificates
        self.store = store
    }

    deinit {
        for certificate in certificates { X509_free(certificate) }
        X509_STORE_free(store)
    }

    /// Reads `file`; throws naming it and the problem.
    static func load(_ file: String) throws(TLSConfigError) -> ClientCertificateAuthorities {
        ERR_clear_error()
        let certificates = try LoadedCertificate.readCertificates(
            file, what: "client CA", order: "one per CA that issues client certificates")
        guard let store = X509_STORE_new() else {
            for certificate in certificates { X509_free(certificate) }
            throw TLSConfigError(.libraryFailure, file: nil, "cannot create an OpenSSL store: \(openSSLErrorText())")
        }
        // From here the object owns the certificates and the store, and frees them if a check throws.
        let authorities = ClientCertificateAuthorities(file: file, certificates: certificates, store: store)
        try authorities.checkAndStore()
        return authorities
    }

    private func checkAndStore() throws(TLSConfigError) {
        for (i, certificate) in certificates.enumerated() {
            // A leaf here (typically the server's own certificate by mistake) would be accepted as a trust
            // anchor by OpenSSL; no client certificate can chain to it, so say so now.
            guard X509_check_ca(certificate) >= 1 else {
                throw TLSConfigError(
                    .notACertificateAuthority, file: file,
                    "TLS client CA file \(file): certificate \(i + 1) (\(subjectText(certificate))) is not a CA "
                        + "certificate (no basicConstraints CA:TRUE); the file must hold the CAs that issue client "
                        + "certificates")
            }
            guard X509_STORE_add_cert(store, certificate) == 1 else {
                throw TLSConfigError(
                    .refusedByOpenSSL, file: file,
                    "OpenSSL refused certificate \(i + 1) of the TLS client CA file \(file): \(openSSLErrorText())")
            }
        }
        // OpenSSL accepts a chain only when it ends at a self-signed certificate of the store: a file of
        // intermediates alone would verify no client at all.
        guard certificates.contains(where: { X509_self_signed($0, 0) == 1 }) else {
            throw TLSConfigError(
                .noRootCertificate, file: file,
                "TLS client CA file \(file) holds no root (self-signed) CA certificate, so no client certificate "
                    + "could verify; add the root of the CAs that issue client certificates")
        }
        ERR_clear_error()
    }
}

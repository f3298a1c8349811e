import COpenSSL
import Glibc

/// One certificate/key pair read from its PEM files and checked, owning one reference to each OpenSSL object
/// until it is released. Loading happens once, at startup or reload, on whichever thread builds the context.
final class LoadedCertificate {
    let files: TLSCertificateFiles
    /// X509: the leaf, then the chain certificates in file order.
    let certificates: [OpaquePointer]
    /// EVP_PKEY.
    let key: OpaquePointer

    var leaf: OpaquePointer { certificates[0] }
    var chain: ArraySlice<OpaquePointer> { certificates.dropFirst() }

    private init(files: TLSCertificateFiles, certificates: [OpaquePointer], key: OpaquePointer) {
        self.files = files
        self.certificates = certificates
        self.key = key
    }

    deinit {
        for certificate in certificates { X509_free(certificate) }
        EVP_PKEY_free(key)
    }

    /// Reads and checks `files`: both readable, a certificate and a key found, the key matching the leaf, and
    /// every certificate in the file valid at `now` (Unix time). Throws naming the file and the problem.
    static func load(_ files: TLSCertificateFiles, now: Int) throws(TLSConfigError) -> LoadedCertificate {
        ERR_clear_error()
        let certificates = try readCertificates(files.certificateChain)
        let key: OpaquePointer
        do throws(TLSConfigError) {
            key = try readPrivateKey(files.privateKey)
        } catch {
            for certificate in certificates { X509_free(certificate) }
            throw error
        }
        let loaded = LoadedCertificate(files: files, certificates: certificates, key: key)
        try loaded.checkKeyMatches()
        try loaded.checkValidity(now: now)
        return loaded
    }

    static func openFile(_ path: String, what: String) throws(TLSConfigError) -> OpaquePointer {
        guard let bio = BIO_new_file(path, "r") else {
            // OpenSSL queues fopen's errno as a system error; errno itself may have changed since.
            let queued = ERR_peek_error()
            let systemError = ERR_GET_LIB(queued) == ERR_LIB_SYS ? ERR_GET_REASON(queued) : errno
            let reason = String(cString: strerror(systemError))
            ERR_clear_error()
            throw TLSConfigError(.unreadableFile, file: path, "cannot read TLS \(what) file \(path): \(reason)")
        }
        return bio
    }

    /// Every PEM certificate in the file, in file order; the caller owns (and frees) each. Other PEM blocks (a
    /// key in the same file) are skipped. `what` names the file in messages ("certificate", "client CA"), and
    /// `order` says how its certificates should be arranged.
    static func readCertificates(
        _ path: String, what: String = "certificate", order: String = "leaf first"
    ) throws(TLSConfigError) -> [OpaquePointer] {
        let bio = try openFile(path, what: what)
        defer { BIO_free(bio) }
        var certificates: [OpaquePointer] = []
        while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { certificates.append(certificate) }
        // Reading stops at the end of the file with "no start line"; anything else is a damaged block.
        let stop = ERR_peek_last_error()
        let cleanEnd = ERR_GET_LIB(stop) == ERR_LIB_PEM && ERR_GET_REASON(stop) == PEM_R_NO_START_LINE
        if certificates.isEmpty || !cleanEnd {
            let reason = openSSLErrorText()
            for certificate in certificates { X509_free(certificate) }
            let which =
                certificates.isEmpty
                ? "no PEM certificate could be read" : "certificate \(certificates.count + 1) is damaged"
            throw TLSConfigError(
                .noCertificate, file: path,
                "TLS \(what) file \(path): \(which) (expected -----BEGIN CERTIFICATE----- blocks, \(order); "
                    + "OpenSSL: \(reason))")
        }
        ERR_clear_error()
        return certificates
    }

    private static func readPrivateKey(_ path: String) throws(TLSConfigError) -> OpaquePointer {
        let bio = try openFile(path, what: "private key")
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, TLSCallbacks.refusePassphrase, nil) else {
            let reason = openSSLErrorText()
            throw TLSConfigError(
                .noPrivateKey, file: path,
                "TLS private key file \(path): no PEM private key could be read (expected an unencrypted "
                    + "-----BEGIN ... PRIVATE KEY----- block; passphrase-protected keys are not supported; "
                    + "OpenSSL: \(reason))")
        }
        return key
    }

    private func checkKeyMatches() throws(TLSConfigError) {
        guard X509_check_private_key(leaf, key) == 1 else {
            let reason = openSSLErrorText()
            throw TLSConfigError(
                .keyMismatch, file: files.privateKey,
                "TLS private key file \(files.privateKey) does not match the certificate in "
                    + "\(files.certificateChain) (\(subjectText(leaf))); OpenSSL: \(reason)")
        }
    }

    private func checkValidity(now: Int) throws(TLSConfigError) {
        var t = time_t(now)
        for (i, certificate) in certificates.enumerated() {
            let which = i == 0 ? "the certificate" : "chain certificate \(i + 1)"
            let notAfter = X509_get0_notAfter(certificate)
            if X509_cmp_time(notAfter, &t) < 0 {
                throw TLSConfigError(
                    .expired, file: files.certificateChain,
                    "TLS certificate file \(files.certificateChain): \(which) (\(subjectText(certificate))) "
                        + "expired at \(timeText(notAfter)); renew it")
            }
            let notBefore = X509_get0_notBefore(certificate)
            if X509_cmp_time(notBefore, &t) > 0 {
                throw TLSConfigError(
                    .notYetValid, file: files.certificateChain,
                    "TLS certificate file \(files.certificateChain): \(which) (\(subjectText(certificate))) "
                        + "is not valid before \(timeText(notBefore)); check the clock or the certificate")
            }
        }
        ERR_clear_error()
    }
}

// MARK: reading fields, for messages and stats

/// What OpenSSL writes into a fresh memory BIO, as text.
func bioText(_ write: (OpaquePointer) -> Void) -> String {
    guard let bio = BIO_new(BIO_s_mem()) else { return "" }
    defer { BIO_free(bio) }
    write(bio)
    let count = Int(lb_BIO_pending(bio))
    let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        initialized = max(0, Int(BIO_read(bio, buffer.baseAddress, Int32(count))))
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The certificate's subject in RFC 2253 form ("CN=a.test,O=Example").
func subjectText(_ certificate: OpaquePointer) -> String {
    bioText { _ = lb_X509_NAME_print_rfc2253($0, X509_get_subject_name(certificate)) }
}

/// "2026-01-31 12:00:00Z".
func timeText(_ time: UnsafePointer<ASN1_TIME>?) -> String {
    bioText { _ = ASN1_TIME_print_ex($0, time, UInt(ASN1_DTFLGS_ISO8601)) }
}

/// Seconds since 1970 (UTC), or 0 if OpenSSL cannot read the time.
func unixTime(_ time: UnsafePointer<ASN1_TIME>?) -> Int {
    var parts = tm()
    guard ASN1_TIME_to_tm(time, &parts) == 1 else { return 0 }
    return Int(timegm(&parts))
}

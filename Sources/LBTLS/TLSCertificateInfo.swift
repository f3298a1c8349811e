import COpenSSL

/// What stats and the admin API show about one loaded certificate. Read once when the context is built.
public struct TLSCertificateInfo: Sendable, Equatable {
    public let files: TLSCertificateFiles
    /// subjectAltName DNS names as written in the certificate ("a.test", "*.b.test"); SNI matches these.
    public let dnsNames: [String]
    /// The subject's commonName, if it has one (shown only; SNI does not use it).
    public let commonName: String?
    /// The issuer in RFC 2253 form ("CN=Example CA,O=Example").
    public let issuer: String
    /// Validity bounds of the leaf, as Unix time (seconds since 1970, UTC).
    public let notBefore: Int
    public let notAfter: Int
    /// "EC" or "RSA" (OpenSSL's key type name) and the key size in bits.
    public let keyType: String
    public let keyBits: Int
    /// Certificates sent after the leaf.
    public let chainLength: Int

    init(_ loaded: LoadedCertificate) {
        let leaf = loaded.leaf
        files = loaded.files
        dnsNames = Self.dnsNames(leaf)
        commonName = Self.commonName(leaf)
        issuer = bioText { _ = lb_X509_NAME_print_rfc2253($0, X509_get_issuer_name(leaf)) }
        notBefore = unixTime(X509_get0_notBefore(leaf))
        notAfter = unixTime(X509_get0_notAfter(leaf))
        keyType = EVP_PKEY_get0_type_name(loaded.key).map { String(cString: $0) } ?? "unknown"
        keyBits = Int(EVP_PKEY_get_bits(loaded.key))
        chainLength = loaded.certificates.count - 1
    }

    private static func dnsNames(_ certificate: OpaquePointer) -> [String] {
        guard let names = lb_X509_subject_alt_names(certificate) else { return [] }
        defer { GENERAL_NAMES_free(names) }
        var result: [String] = []
        for i in 0..<lb_GENERAL_NAMES_count(names) {
            guard let dns = lb_GENERAL_NAMES_dns(names, i), let data = ASN1_STRING_get0_data(dns) else { continue }
            let bytes = UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(dns)))
            result.append(String(decoding: bytes, as: UTF8.self))
        }
        return result
    }

    private static func commonName(_ certificate: OpaquePointer) -> String? {
        let subject = X509_get_subject_name(certificate)
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(subject, index),
            let value = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, value)
        guard length >= 0, let utf8 else { return nil }
        defer { lb_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }
}

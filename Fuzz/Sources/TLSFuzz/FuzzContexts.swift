import Glibc
import LBTLS

// TEST-ONLY KEYS, SECRET TO NOTHING. Two throwaway self-signed ECDSA P-256 certificates and their private keys,
// made once for this harness (valid 2020-2120, so the loader's date check never starts failing) and published
// here on purpose: nothing trusts them, nothing else uses them. Never copy them into a configuration.
// Made with `openssl ca -selfsign` from a P-256 key: subjectAltName DNS:fuzz.test, and DNS:*.fuzz.test.
enum FuzzCertificates {
    static let exactKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgtPNwvJtZ9yQbCjVo
Zoc3lq3Of+sgK+RKdUrvUKvyhh2hRANCAAS9ka9OqilCzqfxGdy8T1bW1Bw7XqWp
Cc0HZDDzzEmg8keMGbhO6t6H2MK4X5GQpm3bqt6eohrLT8pAV3azAo27
-----END PRIVATE KEY-----
"""
    static let exactCertificate = """
-----BEGIN CERTIFICATE-----
MIIBhDCCASqgAwIBAgICEAAwCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJZnV6ei50
ZXN0MCAXDTIwMDEwMTAwMDAwMFoYDzIxMjAwMTAxMDAwMDAwWjAUMRIwEAYDVQQD
DAlmdXp6LnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS9ka9OqilCzqfx
Gdy8T1bW1Bw7XqWpCc0HZDDzzEmg8keMGbhO6t6H2MK4X5GQpm3bqt6eohrLT8pA
V3azAo27o2owaDAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUE
DDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUpvTgHpOSy+NTs0H2dQWhFxIVOccwFAYD
VR0RBA0wC4IJZnV6ei50ZXN0MAoGCCqGSM49BAMCA0gAMEUCIQC88wvWS3hHVhlc
2MuIsiNCcKbr3pp/FgbM77X/NBUi1gIgWeGoaHNCl36NllAZzqyJ8Cdk+naOVG5t
01gADWo9o4A=
-----END CERTIFICATE-----
"""
    static let wildcardKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTQHd0PP6pwrYMJg7
fTQnJXM7U4tX1qvNC3VwPlkMIbqhRANCAATIzDG7oROtkPJ0OthqVdiSKnjQ7Jeq
ttCncJ3obp+ILTHib4SrVFnpvTPPeta76dvxw/wXFD0UeDS7uYzkWo3j
-----END PRIVATE KEY-----
"""
    static let wildcardCertificate = """
-----BEGIN CERTIFICATE-----
MIIBiDCCATCgAwIBAgICEAEwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLKi5mdXp6
LnRlc3QwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBYxFDASBgNV
BAMMCyouZnV6ei50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyMwxu6ET
rZDydDrYalXYkip40OyXqrbQp3Cd6G6fiC0x4m+Eq1RZ6b0zz3rWu+nb8cP8FxQ9
FHg0u7mM5FqN46NsMGowDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYD
VR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFPG9k2w+3FX/7FQTNPOSWiGfaq8r
MBYGA1UdEQQPMA2CCyouZnV6ei50ZXN0MAoGCCqGSM49BAMCA0YAMEMCIHPuvNh8
1SZgg7Qi7CGElkIb1dH79vnk3jZLoC5FpKGbAh8+3m83v8uuBqJDFAilAB4y6aEV
iosF/YRkAl0SbsmN
-----END CERTIFICATE-----
"""
}

/// The two server contexts every input runs against, built once at first use. `TLSServerContext` loads files,
/// so the PEMs above go to a fresh temporary directory first, which is removed as soon as both are loaded.
///
/// Both present fuzz.test (certificate 0, the default) and *.fuzz.test (certificate 1), so SNI switches the
/// SSL_CTX whenever a client names a subdomain.
/// - `lenient`: the defaults: TLS 1.2 and 1.3, ALPN http/1.1, session tickets, a (small) session cache; a name
///   no certificate covers gets the default certificate.
/// - `strict`: strict SNI (no name or an unknown one is refused with unrecognized_name), TLS 1.3 only, ALPN
///   h2 then http/1.1, no tickets (TLS 1.3 resumes through the cache).
/// The caches are kept small: they are the only state one input leaves behind for the next.
enum FuzzContexts {
    static let lenient: TLSServerContext = contexts.0
    static let strict: TLSServerContext = contexts.1

    private static let contexts: (TLSServerContext, TLSServerContext) = {
        var template = Array("/tmp/lb-tlsfuzz-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed: errno \(errno)") }
        let directory = String(cString: made)
        var written: [String] = []
        func write(_ name: String, _ text: String) -> String {
            let path = directory + "/" + name
            guard let file = fopen(path, "w"), fputs(text + "\n", file) >= 0, fclose(file) == 0 else {
                fatalError("cannot write \(path)")
            }
            written.append(path)
            return path
        }
        let certificates = [
            TLSCertificateFiles(
                certificateChain: write("exact.crt", FuzzCertificates.exactCertificate),
                privateKey: write("exact.key", FuzzCertificates.exactKey)),
            TLSCertificateFiles(
                certificateChain: write("wildcard.crt", FuzzCertificates.wildcardCertificate),
                privateKey: write("wildcard.key", FuzzCertificates.wildcardKey)),
        ]
        defer {
            for path in written { unlink(path) }
            rmdir(directory)
        }
        do {
            let lenient = try TLSServerContext(config: TLSServerConfig(certificates: certificates, sessionCacheSize: 64))
            let strict = try TLSServerContext(
                config: TLSServerConfig(
                    certificates: certificates, strictSNI: true, minimumVersion: .tls1_3,
                    alpnProtocols: ["h2", "http/1.1"], sessionTickets: false, sessionCacheSize: 16))
            return (lenient, strict)
        } catch {
            fatalError("the fuzz certificates do not load: \(error)")
        }
    }()
}

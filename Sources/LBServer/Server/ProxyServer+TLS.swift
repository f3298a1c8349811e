import LBTLS
import LBUV

extension ProxyServer {
    /// The OpenSSL context of one TLS listener: its certificates loaded and checked (a file that cannot be
    /// read, a key that does not match, an expired certificate: the error names the file and the problem).
    static func makeTLSContext(_ tls: LBConfig.TLS) throws(SetupError) -> TLSServerContext {
        let config = TLSServerConfig(
            certificates: tls.certificates.map { TLSCertificateFiles(certificateChain: $0.cert, privateKey: $0.key) },
            defaultCertificate: tls.defaultCertificate, strictSNI: tls.strictSNI,
            minimumVersion: tls.minVersion == .tls13 ? .tls1_3 : .tls1_2, alpnProtocols: ["http/1.1"],
            sessionTickets: tls.sessionTickets)
        do {
            return try TLSServerContext(config: config)
        } catch {
            throw SetupError(error.description)
        }
    }
}

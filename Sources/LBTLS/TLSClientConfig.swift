/// How lb speaks TLS to a backend: a value, checked and turned into OpenSSL state by `TLSClientContext`.
/// The name a connection sends (SNI) and verifies is per server, given to each `TLSClientSession`.
public struct TLSClientConfig: Sendable, Hashable {
    /// PEM file of the certificate authorities a backend's certificate must chain to; nil: the system's trust
    /// store (OpenSSL's default paths, `/etc/ssl/certs` on Debian).
    public var caFile: String?
    /// Check the backend's certificate chain and name. Off only for a test bed: it lets anyone on the path pose
    /// as the backend.
    public var verify: Bool
    /// A certificate and key lb presents when a backend asks for one (mutual TLS); nil: none.
    public var clientCertificate: TLSCertificateFiles?
    public var minimumVersion: TLSProtocolVersion
    /// ALPN protocols offered, in order; empty: no ALPN extension.
    public var alpnProtocols: [String]
    /// Resume the last session with a backend on the next connection to it (a ticket or session id), so
    /// reconnecting costs no full handshake.
    public var sessionReuse: Bool

    public init(
        caFile: String? = nil, verify: Bool = true, clientCertificate: TLSCertificateFiles? = nil,
        minimumVersion: TLSProtocolVersion = .tls1_2, alpnProtocols: [String] = ["http/1.1"], sessionReuse: Bool = true
    ) {
        self.caFile = caFile
        self.verify = verify
        self.clientCertificate = clientCertificate
        self.minimumVersion = minimumVersion
        self.alpnProtocols = alpnProtocols
        self.sessionReuse = sessionReuse
    }
}


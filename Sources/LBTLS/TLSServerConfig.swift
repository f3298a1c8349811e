/// One certificate and its private key, as PEM files. The certificate file holds the leaf first, then any
/// intermediates in order (the chain the server sends); the key may be in the same file.
public struct TLSCertificateFiles: Sendable, Hashable {
    public var certificateChain: String
    public var privateKey: String

    public init(certificateChain: String, privateKey: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }
}

/// The TLS versions a server may require as its minimum. Older versions are never offered.
public enum TLSProtocolVersion: Sendable, Comparable, CustomStringConvertible {
    case tls1_2
    case tls1_3

    public var description: String {
        switch self {
        case .tls1_2: "TLSv1.2"
        case .tls1_3: "TLSv1.3"
        }
    }
}

/// What a TLS listener serves. A value: `TLSServerContext` checks it and builds the OpenSSL state from it.
public struct TLSServerConfig: Sendable, Equatable {
    /// Every certificate the listener can present; SNI chooses among them by their subjectAltName DNS names.
    public var certificates: [TLSCertificateFiles]
    /// Index into `certificates` of the one presented when the client's server name matches none (or it sent
    /// none), unless `strictSNI` refuses such clients.
    public var defaultCertificate: Int
    /// Refuse the handshake with an `unrecognized_name` alert when the client sent no server name or one that
    /// no certificate covers, instead of presenting the default certificate.
    public var strictSNI: Bool
    public var minimumVersion: TLSProtocolVersion
    /// ALPN protocols in the server's order of preference ("h2", "http/1.1"). Empty: ALPN is not negotiated.
    /// A client that offers ALPN but none of these is refused with `no_application_protocol`.
    public var alpnProtocols: [String]
    /// Stateless session tickets (TLS 1.2 and 1.3), encrypted with keys every worker shares. Off: resumption
    /// uses only the server-side session cache.
    public var sessionTickets: Bool
    /// Sessions kept in the server-side cache, shared by every worker. 0 turns the cache off.
    public var sessionCacheSize: Int
    /// How long a session (cached or in a ticket) may be resumed, in seconds.
    public var sessionLifetimeSeconds: Int
    /// Ask clients for a certificate and verify it (mutual TLS); nil: no certificate is requested.
    public var clientCertificates: TLSClientCertificates?
    /// A file of session-ticket keys shared with other lb instances (`TLSTicketKeys.load(file:)`); nil: keys
    /// of this process only.
    public var ticketKeyFile: String?

    public init(
        certificates: [TLSCertificateFiles], defaultCertificate: Int = 0, strictSNI: Bool = false,
        minimumVersion: TLSProtocolVersion = .tls1_2, alpnProtocols: [String] = ["http/1.1"],
        sessionTickets: Bool = true, sessionCacheSize: Int = 20_000, sessionLifetimeSeconds: Int = 7_200,
        clientCertificates: TLSClientCertificates? = nil, ticketKeyFile: String? = nil
    ) {
        self.certificates = certificates
        self.defaultCertificate = defaultCertificate
        self.strictSNI = strictSNI
        self.minimumVersion = minimumVersion
        self.alpnProtocols = alpnProtocols
        self.sessionTickets = sessionTickets
        self.sessionCacheSize = sessionCacheSize
        self.sessionLifetimeSeconds = sessionLifetimeSeconds
        self.clientCertificates = clientCertificates
        self.ticketKeyFile = ticketKeyFile
    }

    /// Checks what does not need a file; throws `.invalidSetting` naming the setting.
    func validate() throws(TLSConfigError) {
        if certificates.isEmpty {
            throw TLSConfigError(.invalidSetting, file: nil, "TLS needs at least one certificate and key pair")
        }
        if !certificates.indices.contains(defaultCertificate) {
            throw TLSConfigError(
                .invalidSetting, file: nil,
                "TLS default certificate index \(defaultCertificate) is out of range: there are "
                    + "\(certificates.count) certificates (indices 0 to \(certificates.count - 1))")
        }
        for name in alpnProtocols where name.utf8.isEmpty || name.utf8.count > 255 {
            throw TLSConfigError(
                .invalidSetting, file: nil,
                "TLS ALPN protocol name \"\(name)\" must be 1 to 255 bytes long (RFC 7301 section 3.1)")
        }
        if sessionCacheSize < 0 {
            throw TLSConfigError(
                .invalidSetting, file: nil, "TLS session cache size \(sessionCacheSize) is negative; 0 turns it off")
        }
        if sessionLifetimeSeconds <= 0 || sessionLifetimeSeconds > Int(Int32.max) {
            throw TLSConfigError(
                .invalidSetting, file: nil,
                "TLS session lifetime \(sessionLifetimeSeconds) s must be positive and fit in 32 bits")
        }
        if let client = clientCertificates {
            if client.caFile.isEmpty {
                throw TLSConfigError(.invalidSetting, file: nil, "TLS client certificates need a CA file")
            }
            if !(0...TLSClientCertificates.maxVerifyDepth).contains(client.verifyDepth) {
                throw TLSConfigError(
                    .invalidSetting, file: nil,
                    "TLS client certificate verify depth \(client.verifyDepth) is out of range "
                        + "0-\(TLSClientCertificates.maxVerifyDepth)")
            }
        }
    }
}

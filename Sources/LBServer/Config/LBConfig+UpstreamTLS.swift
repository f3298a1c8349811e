extension LBConfig {
    /// TLS to backends (`upstream_tls`, and a server's `tls`): how lb connects, verifies and identifies itself.
    public struct UpstreamTLS: Equatable, Sendable {
        /// PEM file of the authorities a backend certificate must chain to; nil: the system's trust store.
        public var caFile: String?
        /// Verify the backend's certificate (chain and name). Default on.
        public var verify: Bool
        /// The name sent as SNI and required in the backend's certificate; nil: the server's `host` (an IP
        /// address is then checked against the certificate's IP addresses and no SNI is sent).
        public var serverName: String?
        /// Presented when a backend asks for a client certificate.
        public var clientCertificate: TLS.Certificate?
        public var minVersion: TLS.MinVersion
        /// Resume the last session with each backend, so a new connection costs no full handshake.
        public var sessionReuse: Bool

        public init(
            caFile: String? = nil, verify: Bool = true, serverName: String? = nil,
            clientCertificate: TLS.Certificate? = nil, minVersion: TLS.MinVersion = .tls12, sessionReuse: Bool = true
        ) {
            self.caFile = caFile
            self.verify = verify
            self.serverName = serverName
            self.clientCertificate = clientCertificate
            self.minVersion = minVersion
            self.sessionReuse = sessionReuse
        }
    }

    /// The TLS settings connections to the server with this id use; nil: plain TCP.
    public func upstreamTLS(forServer id: String) -> UpstreamTLS? {
        if let override = serverTLS[id] { return override }
        return upstreamTLS
    }
}

extension LBConfig {
    /// One address clients connect to (`listeners[i]`): plain HTTP, or HTTPS when `tls` is set.
    public struct Listener: Equatable, Sendable {
        public var address: HostPort
        public var tls: TLS?
        /// HTTP/2 from clients: ALPN `h2` (preferred) on TLS, h2c with prior knowledge on plain HTTP.
        public var http2: Bool

        public init(address: HostPort, tls: TLS? = nil, http2: Bool = true) {
            self.address = address
            self.tls = tls
            self.http2 = http2
        }
    }

    /// A TLS listener's certificates and protocol settings (`listeners[i].tls`).
    public struct TLS: Equatable, Sendable {
        /// One certificate chain (PEM, leaf first) and its private key (PEM).
        public struct Certificate: Equatable, Sendable {
            public var cert: String
            public var key: String

            public init(cert: String, key: String) {
                self.cert = cert
                self.key = key
            }
        }

        public enum MinVersion: String, CaseIterable, Sendable {
            case tls12 = "1.2"
            case tls13 = "1.3"
        }

        /// Chosen by SNI from each certificate's DNS names; `defaultCertificate` (an index) for other names.
        public var certificates: [Certificate]
        public var defaultCertificate: Int
        /// A client naming no configured server is refused (alert unrecognized_name) instead of getting the
        /// default certificate.
        public var strictSNI: Bool
        public var minVersion: MinVersion
        /// Session tickets (keys shared by every worker, so a session resumes on any of them).
        public var sessionTickets: Bool
        /// Ticket keys shared with other lb instances (`ticket_key_file`); nil: random keys of this process.
        public var ticketKeyFile: String?
        /// Client certificates (mutual TLS); nil: none is requested.
        public var clientCertificates: ClientCertificates?

        public init(
            certificates: [Certificate], defaultCertificate: Int = 0, strictSNI: Bool = false,
            minVersion: MinVersion = .tls12, sessionTickets: Bool = true, clientCertificates: ClientCertificates? = nil
        ) {
            self.certificates = certificates
            self.defaultCertificate = defaultCertificate
            self.strictSNI = strictSNI
            self.minVersion = minVersion
            self.sessionTickets = sessionTickets
            self.clientCertificates = clientCertificates
        }
    }

    /// `listeners[i].tls.client_certificates`: which CAs issue client certificates, whether one is required, and
    /// the request field that carries a verified certificate's subject to the backends.
    public struct ClientCertificates: Equatable, Sendable {
        public enum Mode: String, CaseIterable, Sendable {
            case required, optional
        }

        /// PEM file of the CA certificates that issue client certificates.
        public var caFile: String
        public var mode: Mode
        /// The field the proxy sets to the verified subject (and strips from every request on the listener);
        /// nil: no field is added and nothing is stripped.
        public var subjectHeader: String?
        /// Intermediate CA certificates allowed between a client certificate and a CA of `caFile`.
        public var verifyDepth: Int

        public init(caFile: String, mode: Mode = .required, subjectHeader: String? = nil, verifyDepth: Int = 2) {
            self.caFile = caFile
            self.mode = mode
            self.subjectHeader = subjectHeader
            self.verifyDepth = verifyDepth
        }
    }

    /// Every listener: `listeners` when the file gives them, else one plain listener on `listen`.
    public var effectiveListeners: [Listener] {
        listeners.isEmpty ? [Listener(address: listen)] : listeners
    }
}

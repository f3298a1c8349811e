/// Client certificates (mutual TLS) on one listener: which CAs issue them, and whether a client must present one.
///
/// In both modes a certificate the client presents must verify: chain to a CA in `caFile` within `verifyDepth`
/// intermediates, be within its validity dates and be fit for client authentication (an extendedKeyUsage, if
/// present, must include clientAuth). One that does not is refused with an alert, never treated as absent.
public struct TLSClientCertificates: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// A client that presents no certificate is refused (alert `certificate_required` in TLS 1.3,
        /// `handshake_failure` in TLS 1.2).
        case required
        /// A client may present none and is then served without one.
        case optional
    }

    /// PEM file of the CA certificates that issue client certificates, up to their root: a chain must end at
    /// a self-signed certificate of this file (an issuing intermediate may be in it too, or come from the
    /// client). They are the only trust anchors (the system's store is not used), and their subjects are the CA
    /// names the server sends in its request.
    public var caFile: String
    public var mode: Mode
    /// The most intermediate CA certificates allowed between the client's certificate and a CA of `caFile`
    /// (OpenSSL's verify depth: 0 = issued directly by a CA in the file).
    public var verifyDepth: Int

    public init(caFile: String, mode: Mode = .required, verifyDepth: Int = 2) {
        self.caFile = caFile
        self.mode = mode
        self.verifyDepth = verifyDepth
    }

    /// Deeper chains than this are refused as a setting: a client PKI has a handful of levels.
    public static let maxVerifyDepth = 10
}

/// Why the server refused a client's certificate during a handshake (see `TLSError.clientCertificateRefusal`).
/// Counters index by `rawValue`.
public enum TLSClientCertificateRefusal: Int, CaseIterable, Sendable {
    /// Mode `required` and the client presented none.
    case missing
    /// The chain does not lead to a CA of the file (unknown issuer, self-signed, or longer than the verify
    /// depth allows).
    case untrusted
    /// The certificate (or one in its chain) is past its notAfter or before its notBefore date.
    case expired
    /// Any other verification failure: a bad signature, a certificate not meant for client authentication, a
    /// malformed certificate.
    case invalid

    /// The label in stats and metrics.
    public var name: String {
        switch self {
        case .missing: "missing"
        case .untrusted: "untrusted"
        case .expired: "expired"
        case .invalid: "invalid"
        }
    }
}

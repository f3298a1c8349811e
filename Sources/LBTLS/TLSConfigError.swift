/// Why a TLS configuration cannot be loaded. Thrown only while building a `TLSServerContext`, never on the data
/// path. `description` names the file and says what to fix; `problem` lets a caller (or a test) tell the cases
/// apart without parsing text.
public struct TLSConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Problem: Sendable, Equatable {
        /// The file could not be opened (missing, permissions); the message carries the system's reason.
        case unreadableFile
        /// No PEM certificate could be read from the certificate file (empty, garbage, or a key only).
        case noCertificate
        /// No PEM private key could be read from the key file (garbage, wrong format, or passphrase-protected).
        case noPrivateKey
        /// The private key is not the certificate's key.
        case keyMismatch
        /// A certificate in the file is past its notAfter date.
        case expired
        /// A certificate in the file is before its notBefore date.
        case notYetValid
        /// A certificate other than the default has no subjectAltName DNS names, so SNI could never choose it.
        case noServerNames
        /// A certificate in the client CA file is not a CA certificate (no basicConstraints CA:TRUE).
        case notACertificateAuthority
        /// The client CA file holds intermediates only: no chain could end at a root, so nothing would verify.
        case noRootCertificate
        /// OpenSSL would not use the certificate or key: typically a key or signature too weak for the system's
        /// security level (RSA under 2048 bits, SHA-1), or an unsupported key type.
        case refusedByOpenSSL
        /// A session-ticket key file that is not at least three base64 lines of 80 bytes each.
        case invalidTicketKeys
        /// A setting that involves no file is out of range.
        case invalidSetting
        /// OpenSSL refused something that does not depend on the files (out of memory, no randomness).
        case libraryFailure
    }

    public let problem: Problem
    /// The file the problem is in, as configured; nil for `.invalidSetting` and `.libraryFailure`.
    public let file: String?
    public let description: String

    init(_ problem: Problem, file: String?, _ description: String) {
        self.problem = problem
        self.file = file
        self.description = description
    }
}

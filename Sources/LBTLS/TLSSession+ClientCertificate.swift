import COpenSSL

/// The client's certificate, once the handshake is complete.
extension TLSSession {
    enum ClientSubject {
        case unread
        case none
        case verified(String)
    }

    /// Whether the client presented a certificate that verified. False before the handshake completes, when
    /// the listener asks for no client certificate, and when the client (mode optional) presented none.
    ///
    /// A resumed session (session id, or a ticket) carries the certificate of the handshake that created it:
    /// OpenSSL keeps the peer certificate and its verification result in the session and restores both.
    public var hasVerifiedClientCertificate: Bool { clientCertificateSubject != nil }

    /// The verified client certificate's subject as one line of RFC 2253 text in ASCII: "CN=alice,O=Example",
    /// most specific name first, characters outside printable ASCII escaped as `\XX` (UTF-8 bytes in hex),
    /// RFC 2253 specials (`,+"\<>;`) escaped with a backslash. "" for a certificate with an empty subject. Nil
    /// as for `hasVerifiedClientCertificate`.
    ///
    /// Read from OpenSSL on the first call after the handshake and kept: later calls (every request of the
    /// connection) return the same string without allocating.
    public var clientCertificateSubject: String? {
        switch clientSubject {
        case .verified(let subject): return subject
        case .none: return nil
        case .unread:
            guard isHandshakeComplete else { return nil }
            let subject = readVerifiedClientSubject()
            clientSubject = subject.map(ClientSubject.verified) ?? .none
            return subject
        }
    }

    private func readVerifiedClientSubject() -> String? {
        // The verification result is checked as well as the certificate's presence: with no verify callback a
        // certificate that fails ends the handshake, so this is a second line of defence, not the first.
        guard let peer = SSL_get0_peer_certificate(ssl), SSL_get_verify_result(ssl) == Int(X509_V_OK) else {
            return nil
        }
        return bioText { _ = lb_X509_NAME_print_rfc2253_ascii($0, X509_get_subject_name(peer)) }
    }
}

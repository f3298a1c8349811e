import COpenSSL

// Every C callback OpenSSL calls lives in this file. Each one is capture-free, recovers its owner without
// retaining it, and calls one named Swift method. They run inside an SSL_* call made by a `TLSSession`, on that
// session's thread.
//
// Owners, both set unretained:
// - SNI: the `TLSSession`, from the SSL's ex_data slot 0 (the "app data" slot OpenSSL reserves for this),
//   set in `TLSSession.init`. The session owns the SSL, so it is alive whenever the SSL runs a callback. The
//   session is the owner (not the context) because it records why it refused, for its error message.
// - ALPN: the `TLSServerContext`, from the `arg` given with the callback. Every session holds its context
//   strongly and the SSL_CTXs are freed only in the context's deinit, so it outlives every handshake.

@inline(__always)
private func owner<T: AnyObject>(_ arg: UnsafeMutableRawPointer?, as: T.Type = T.self) -> T {
    Unmanaged<T>.fromOpaque(arg!).takeUnretainedValue()
}

enum TLSCallbacks {
    /// SNI, called once per ClientHello after extensions are parsed (also when the client sent no server name).
    /// Returns SSL_TLSEXT_ERR_OK, or SSL_TLSEXT_ERR_ALERT_FATAL with `alert` set to refuse the handshake.
    static let serverName: lb_servername_cb = { ssl, alert, _ in
        let session: TLSSession = owner(SSL_get_ex_data(ssl, sessionExDataIndex))
        return session.selectCertificate(alert: alert!)
    }

    /// ALPN, called when the ClientHello carries the extension. `clientList` is the client's wire-format list
    /// (length-prefixed names); the chosen name is pointed to inside it, which OpenSSL copies before returning.
    static let alpnSelect: SSL_CTX_alpn_select_cb_func = { _, selected, selectedLength, clientList, clientLength, arg in
        let context: TLSServerContext = owner(arg)
        let offered = UnsafeBufferPointer(start: clientList, count: Int(clientLength))
        guard let (start, length) = context.selectALPN(offered: offered) else {
            // No overlap: OpenSSL turns this into a fatal no_application_protocol alert (RFC 7301 section 3.2).
            return SSL_TLSEXT_ERR_ALERT_FATAL
        }
        selected!.pointee = clientList! + start
        selectedLength!.pointee = UInt8(length)
        return SSL_TLSEXT_ERR_OK
    }

    /// Passphrase prompt for encrypted PEM keys. OpenSSL's default would read the terminal and block a server
    /// at startup; returning -1 makes an encrypted key fail to load with a message instead.
    static let refusePassphrase: lb_pem_password_cb = { _, _, _, _ in -1 }
}

extension TLSCallbacks {
    /// Client side: the server gave a session (after a TLS 1.2 handshake, or in a TLS 1.3 NewSessionTicket).
    /// The owner is the `TLSClientSession` in the SSL's ex_data slot 0, set in its init; it owns the SSL.
    /// Returns 1 when the session's reference was taken.
    static let newClientSession: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
        guard let session else { return 0 }
        let owner: TLSClientSession = owner(SSL_get_ex_data(ssl, sessionExDataIndex))
        return owner.keep(session)
    }
}

extension TLSCallbacks {
    /// Server side: a session ticket is being encrypted (`enc` 1) or one the client offered decrypted (`enc` 0),
    /// with the listener's `TLSTicketKeys`. The owner is the `TLSSession` in ex_data slot 0 (set in its init),
    /// whose context holds the keys. Returns what `TLSTicketKeys.ticketCallback` says.
    static let ticketKey:
        @convention(c) (
            OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, OpaquePointer?, OpaquePointer?,
            Int32
        ) -> Int32 = { ssl, name, iv, cipher, mac, enc in
            guard let name, let iv, let cipher, let mac else { return -1 }
            let session: TLSSession = owner(SSL_get_ex_data(ssl, sessionExDataIndex))
            return session.context.ticketKeys.ticketCallback(
                name: name, iv: iv, cipher: cipher, mac: mac, encrypt: enc == 1,
                alwaysRenew: SSL_version(ssl) == TLS1_3_VERSION)
        }
}

extension TLSCallbacks {
    /// Server side, first thing on a ClientHello (before SNI and resumption): the `TLSSession` in ex_data slot 0
    /// binds its session id context to the server name asked for. Always lets the handshake go on.
    static let clientHello: SSL_client_hello_cb_fn = { ssl, _, _ in
        let session: TLSSession = owner(SSL_get_ex_data(ssl, sessionExDataIndex))
        session.bindSessionToServerName()
        return SSL_CLIENT_HELLO_SUCCESS
    }
}

import COpenSSL
import Glibc

/// The OpenSSL state of one TLS listener: one SSL_CTX per certificate, the SNI table and the ALPN list. Built
/// once from a `TLSServerConfig` (on any thread), then shared read-only by every worker, which make a
/// `TLSSession` from it per connection. A reload builds a new context; sessions keep the one they started with.
///
/// Session resumption works across workers because there is one context: every SSL_CTX in it encrypts tickets
/// with the same keys (random per context, never written anywhere), and the server-side session cache lives in
/// the default certificate's SSL_CTX, which every session starts from.
///
/// With client certificates, every SSL_CTX carries the same verify mode, depth, CA store and CA names: SNI
/// switches a session to another certificate's SSL_CTX during the handshake, and the certificate request and
/// its verification read from whichever one the session has then.
///
/// `@unchecked Sendable`: after `init` no stored property changes. Worker threads use the SSL_CTXs only through
/// `SSL_new`, the handshake and the session cache, which OpenSSL documents as safe to share between threads
/// (it locks the cache and reference counts itself); the callbacks only read the immutable tables.
public final class TLSServerContext: @unchecked Sendable {
    public let config: TLSServerConfig
    /// One per `config.certificates` entry, same order.
    public let certificates: [TLSCertificateInfo]
    /// SSL_CTX, one per certificate, same order.
    let sslContexts: [OpaquePointer]
    private let names: ServerNameTable
    /// `config.alpnProtocols` as bytes, in preference order.
    private let alpn: [[UInt8]]
    /// What session tickets are encrypted with: `config.ticketKeyFile`'s keys, else the keys given at init.
    public let ticketKeys: TLSTicketKeys
    /// The session id context of this listener's settings, before a handshake binds it to a server name.
    let sessionIDContextBase: [UInt8]

    /// Loads and checks every certificate and key, and builds the OpenSSL contexts. Throws naming the file and
    /// the problem: unreadable, no certificate or key in it, key not matching, expired or not yet valid.
    /// `ticketKeys` are used when the config names no ticket key file: pass the same object to every context
    /// of a process (the one `TLSTicketKeys.random()` made at start) so a reload keeps sessions resumable; nil
    /// makes new random keys.
    public convenience init(config: TLSServerConfig, ticketKeys: TLSTicketKeys? = nil) throws(TLSConfigError) {
        try self.init(config: config, ticketKeys: ticketKeys, now: Int(time(nil)))
    }

    /// As above, checking validity dates against `now` (Unix time).
    init(config: TLSServerConfig, ticketKeys: TLSTicketKeys? = nil, now: Int) throws(TLSConfigError) {
        try config.validate()
        var loaded: [LoadedCertificate] = []
        for files in config.certificates { loaded.append(try LoadedCertificate.load(files, now: now)) }
        let infos = loaded.map(TLSCertificateInfo.init)
        for (index, info) in infos.enumerated() where info.dnsNames.isEmpty && index != config.defaultCertificate {
            let file = info.files.certificateChain
            throw TLSConfigError(
                .noServerNames, file: file,
                "TLS certificate file \(file) has no subjectAltName DNS names, so SNI can never choose it; "
                    + "make it the default certificate or reissue it with DNS names")
        }

        let clientAuthorities = try config.clientCertificates.map {
            (client) throws(TLSConfigError) in try ClientCertificateAuthorities.load(client.caFile)
        }

        let keys: TLSTicketKeys
        if let file = config.ticketKeyFile {
            keys = try TLSTicketKeys.load(file: file)
        } else if let ticketKeys {
            keys = ticketKeys
        } else {
            keys = try TLSTicketKeys.random()
        }
        var contexts: [OpaquePointer] = []
        do throws(TLSConfigError) {
            for certificate in loaded {
                contexts.append(
                    try Self.makeSSLContext(certificate, config: config, clientAuthorities: clientAuthorities))
            }
        } catch {
            for context in contexts { SSL_CTX_free(context) }
            throw error
        }

        self.config = config
        self.certificates = infos
        self.sslContexts = contexts
        self.names = ServerNameTable(dnsNames: infos.map(\.dnsNames))
        self.alpn = config.alpnProtocols.map { Array($0.utf8) }
        self.ticketKeys = keys
        self.sessionIDContextBase = Self.sessionIDContext(config)

        let arg = Unmanaged.passUnretained(self).toOpaque()
        for context in contexts {
            _ = lb_SSL_CTX_set_tlsext_servername_callback(context, TLSCallbacks.serverName)
            SSL_CTX_set_client_hello_cb(context, TLSCallbacks.clientHello, nil)
            if !alpn.isEmpty { SSL_CTX_set_alpn_select_cb(context, TLSCallbacks.alpnSelect, arg) }
        }
    }

    deinit {
        for context in sslContexts { SSL_CTX_free(context) }
    }

    /// The SSL_CTX every session starts from; SNI may switch a session to another.
    var defaultSSLContext: OpaquePointer { sslContexts[config.defaultCertificate] }

    // MARK: called during a handshake, on the session's thread

    /// The certificate whose DNS names cover `serverName` (the client's SNI, NUL-terminated), or nil when none
    /// does or the client sent none.
    func certificate(forServerName serverName: UnsafePointer<CChar>?) -> Int? {
        guard let serverName else { return nil }
        return names.certificate(for: String(cString: serverName))
    }

    /// The first server-preferred protocol the client offers, as (offset of its first byte, length) in
    /// `offered` (the client's length-prefixed list); nil when none is offered. Allocates nothing.
    func selectALPN(offered: UnsafeBufferPointer<UInt8>) -> (Int, Int)? {
        for name in alpn {
            var i = 0
            while i < offered.count {
                let length = Int(offered[i])
                let start = i + 1
                guard start + length <= offered.count else { break }
                if length == name.count && offered[start..<start + length].elementsEqual(name) {
                    return (start, length)
                }
                i = start + length
            }
        }
        return nil
    }

    /// Which certificate an SSL_CTX belongs to (after SNI), for stats.
    func certificateIndex(of context: OpaquePointer) -> Int? { sslContexts.firstIndex(of: context) }
}

import COpenSSL
import LBTLS
import XCTest

/// A TLS client made directly with OpenSSL, on two memory BIOs like the server: the other end of every test.
/// It verifies the server's chain against the test CA (and the host name when `verifyHost` is given).
final class TestClient {
    struct Options {
        var serverName: String?
        var verifyHost: String?
        var alpn: [String] = []
        var minVersion: Int32 = 0
        var maxVersion: Int32 = 0
        /// Security level 0, so that the client is able to offer TLS 1.1 at all (OpenSSL 3 refuses it above 0).
        var allowLegacy = false
        /// SSL_SESSION to resume; the client takes its own reference.
        var session: OpaquePointer?
        /// The client's certificate chain file (leaf first) and key, presented when the server asks for one.
        var certificate: TLSCertificateFiles?
    }

    private let context: OpaquePointer
    let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    /// Plaintext received from the server.
    var received: [UInt8] = []
    /// OpenSSL's reasons when the client failed, e.g. "tlsv1 unrecognized name".
    private(set) var failure: String?
    private(set) var sawCloseNotify = false

    init(caFile: String, _ options: Options = Options()) {
        context = SSL_CTX_new(TLS_client_method())!
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        XCTAssertEqual(SSL_CTX_load_verify_locations(context, caFile, nil), 1)
        if options.allowLegacy { SSL_CTX_set_security_level(context, 0) }
        if options.minVersion != 0 { XCTAssertEqual(lb_SSL_CTX_set_min_proto_version(context, options.minVersion), 1) }
        if options.maxVersion != 0 { XCTAssertEqual(lb_SSL_CTX_set_max_proto_version(context, options.maxVersion), 1) }
        if let files = options.certificate {
            XCTAssertEqual(SSL_CTX_use_certificate_chain_file(context, files.certificateChain), 1)
            XCTAssertEqual(SSL_CTX_use_PrivateKey_file(context, files.privateKey, SSL_FILETYPE_PEM), 1)
        }
        ssl = SSL_new(context)!
        readBIO = BIO_new(BIO_s_mem())!
        writeBIO = BIO_new(BIO_s_mem())!
        SSL_set_bio(ssl, readBIO, writeBIO)
        SSL_set_connect_state(ssl)
        if let name = options.serverName { XCTAssertEqual(lb_SSL_set_tlsext_host_name(ssl, name), 1) }
        if let host = options.verifyHost { XCTAssertEqual(SSL_set1_host(ssl, host), 1) }
        if !options.alpn.isEmpty {
            let wire = options.alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            XCTAssertEqual(SSL_set_alpn_protos(ssl, wire, UInt32(wire.count)), 0)  // 0 is success here
        }
        if let session = options.session { XCTAssertEqual(SSL_set_session(ssl, session), 1) }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }
    var failed: Bool { failure != nil }

    func feed(_ bytes: [UInt8]) { XCTAssertEqual(Int(BIO_write(readBIO, bytes, Int32(bytes.count))), bytes.count) }

    func takeCiphertext() -> [UInt8] {
        let count = Int(lb_BIO_pending(writeBIO))
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        XCTAssertEqual(Int(BIO_read(writeBIO, &bytes, Int32(count))), count)
        return bytes
    }

    /// Advances the handshake, then reads whatever plaintext (and tickets) arrived.
    func drive() {
        guard !failed, !sawCloseNotify else { return }
        ERR_clear_error()
        if !isHandshakeComplete {
            let result = SSL_do_handshake(ssl)
            if result != 1 {
                noteError(result)
                return
            }
        }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = SSL_read(ssl, &buffer, Int32(buffer.count))
            if n > 0 {
                received += buffer[0..<Int(n)]
                continue
            }
            noteError(n)
            return
        }
    }

    private func noteError(_ result: Int32) {
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return
        case SSL_ERROR_ZERO_RETURN: sawCloseNotify = true
        case let code:
            var reasons: [String] = []
            while case let error = ERR_get_error(), error != 0 {
                reasons.append(ERR_reason_error_string(error).map { String(cString: $0) } ?? "\(error)")
            }
            failure = "SSL_get_error \(code): " + reasons.joined(separator: "; ")
        }
    }

    func write(_ bytes: [UInt8]) {
        ERR_clear_error()
        XCTAssertEqual(Int(SSL_write(ssl, bytes, Int32(bytes.count))), bytes.count)
    }

    func shutdown() { _ = SSL_shutdown(ssl) }

    var negotiatedALPN: String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    var isResumed: Bool { SSL_session_reused(ssl) == 1 }
    var version: Int32 { SSL_version(ssl) }

    /// The session to resume from, with a reference the caller releases (SSL_SESSION_free); nil if none.
    func session() -> OpaquePointer? { SSL_get1_session(ssl) }

    /// The CA names the server sent in its certificate request, RFC 2253 text each.
    var requestedCANames: [String] {
        guard let names = SSL_get_client_CA_list(ssl) else { return [] }
        return (0..<OPENSSL_sk_num(names)).map { i in
            let name = OpaquePointer(OPENSSL_sk_value(names, i))
            let bio = BIO_new(BIO_s_mem())!
            defer { BIO_free(bio) }
            _ = lb_X509_NAME_print_rfc2253(bio, name)
            var bytes = [UInt8](repeating: 0, count: Int(lb_BIO_pending(bio)))
            _ = BIO_read(bio, &bytes, Int32(bytes.count))
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// The commonName of the certificate the server presented.
    var peerCommonName: String? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        var buffer = [CChar](repeating: 0, count: 256)
        let length = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, &buffer, 256)
        guard length >= 0 else { return nil }
        return String(decoding: buffer[0..<Int(length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

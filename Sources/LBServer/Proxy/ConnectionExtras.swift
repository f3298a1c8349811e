import LBTLS

/// The parts of a client connection that only some connections need, allocated by the first that needs one
/// (`ClientConnection.extras`), so that an idle plain HTTP/1.1 connection from an IPv4 client does not carry them.
final class ConnectionExtras {
    /// The connection's stream when it is TLS.
    let tls: TLSStream<TLSSession>?
    /// The access log's TLS fields, made at the first logged request.
    var tlsLogFields: [UInt8]?
    /// Set once the client spoke HTTP/2.
    var h2: H2Connection?
    /// The first bytes of a plain connection while they still match the h2c preface.
    var prefacePrefix: [UInt8] = []
    /// The client's address as text when it is longer than the 15 bytes kept inline (IPv6).
    var longAddress: [UInt8]?

    init(tls: TLSStream<TLSSession>?) {
        self.tls = tls
    }
}

import LBHTTP
import LBTLS

/// What one TLS listener serves: its OpenSSL context and, with `client_certificates.subject_header`, the request
/// field that carries a verified client certificate's subject. Published as one object (a certificate reload
/// swaps both together), so a connection never pairs one configuration's CAs with another's field. Immutable;
/// read by every worker at each accept.
final class TLSListenerContext: Sendable {
    let tls: TLSServerContext
    /// The field the proxy owns on this listener, without a value; nil when no `subject_header` is configured
    /// (then requests pass as they came, whatever fields they carry).
    let subjectField: OwnedRequestField?

    init(tls: TLSServerContext, subjectField: OwnedRequestField?) {
        self.tls = tls
        self.subjectField = subjectField
    }
}

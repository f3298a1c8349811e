import Foundation
import LBTLS

/// The TLS listeners' certificates as the admin API and metrics show them: names, issuer and expiry, so an
/// operator sees a certificate running out before clients do.
extension AdminServer {
    func certificatesJSON() -> [[String: Any]] {
        let now = Int(Date().timeIntervalSince1970)
        var list: [[String: Any]] = []
        for (listener, context) in server.tlsContexts.enumerated() {
            for (index, info) in context.certificates.enumerated() {
                var entry: [String: Any] = [
                    "listener": listener,
                    "file": info.files.certificateChain,
                    "names": info.dnsNames,
                    "issuer": info.issuer,
                    "not_before": info.notBefore,
                    "not_after": info.notAfter,
                    "days_to_expiry": rounded(Double(info.notAfter - now) / 86_400),
                    "key": "\(info.keyType) \(info.keyBits)",
                    "default": index == context.config.defaultCertificate,
                ]
                if let cn = info.commonName { entry["common_name"] = cn }
                list.append(entry)
            }
        }
        return list
    }

    /// `lb_tls_certificate_expiry_seconds{file,name}`: seconds until each certificate's notAfter (negative once
    /// expired), the usual alerting input.
    func writeCertificateMetrics(_ m: inout PrometheusText) {
        guard !server.tlsContexts.isEmpty else { return }
        let now = Int(Date().timeIntervalSince1970)
        m.family("lb_tls_certificate_expiry_seconds", .gauge, "Seconds until the TLS certificate expires.")
        for context in server.tlsContexts {
            for info in context.certificates {
                let name = info.dnsNames.first ?? info.commonName ?? ""
                m.sample(
                    "lb_tls_certificate_expiry_seconds", [("file", info.files.certificateChain), ("name", name)],
                    Double(info.notAfter - now))
            }
        }
    }
}

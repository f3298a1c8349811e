import LBHTTP
import LBTLS

extension ConfigLoader {
    enum ListenerKey: String, ConfigKey { case address, tls, http2 }

    enum TLSKey: String, ConfigKey {
        case certificates, defaultCertificate = "default_certificate", strictSNI = "strict_sni"
        case minVersion = "min_version", sessionTickets = "session_tickets", ticketKeyFile = "ticket_key_file"
        case clientCertificates = "client_certificates"
    }

    enum CertificateKey: String, ConfigKey { case cert, key }

    enum ClientCertificateKey: String, ConfigKey {
        case caFile = "ca_file", mode, subjectHeader = "subject_header", verifyDepth = "verify_depth"
    }

    /// Reads `listeners`: a non-empty array of `{ "address": "HOST:PORT", "tls": { ... } }`. Files are checked
    /// when the listener starts (and by `--check-config`), where OpenSSL reads them.
    static func readListeners(_ value: JSONValue, in top: ConfigSection<TopLevelKey>) -> [LBConfig.Listener] {
        guard case .array(let elements) = value, !elements.isEmpty else {
            top.problem(.listeners, "expected a non-empty array of listener objects, got \(value.kindDescription)")
            return []
        }
        var listeners: [LBConfig.Listener] = []
        for (index, element) in elements.enumerated() {
            let path = "\(top.keyPath(.listeners))[\(index)]"
            guard let s = ConfigSection<ListenerKey>(element, path: path, problems: top.problems) else { continue }
            guard s[.address] != nil else {
                s.problem(.address, "missing (required), e.g. \"0.0.0.0:443\"")
                continue
            }
            let address = s.parsed(.address, default: HostPort(host: "", port: 0)) {
                (text: String) throws(ConfigValueError) in try parseAddress(text, allowPortZero: true)
            }
            var tls: LBConfig.TLS?
            if let t = s.section(.tls, of: TLSKey.self) { tls = readTLS(t) }
            if let first = listeners.firstIndex(where: { $0.address == address }), address.port != 0 {
                s.problem(.address, "\(address) is also listeners[\(first)]")
                continue
            }
            listeners.append(LBConfig.Listener(address: address, tls: tls, http2: s.bool(.http2, default: true)))
        }
        return listeners
    }

    static func readTLS(_ s: ConfigSection<TLSKey>) -> LBConfig.TLS? {
        var certificates: [LBConfig.TLS.Certificate] = []
        switch s[.certificates] {
        case .array(let elements)? where !elements.isEmpty:
            for (index, element) in elements.enumerated() {
                let path = "\(s.keyPath(.certificates))[\(index)]"
                if let pair = readCertificatePair(element, path: path, problems: s.problems) { certificates.append(pair) }
            }
        case let other:
            s.problem(
                .certificates,
                "expected a non-empty array of {\"cert\": FILE, \"key\": FILE}, "
                    + "got \(other?.kindDescription ?? "nothing")")
        }
        var tls = LBConfig.TLS(certificates: certificates)
        tls.defaultCertificate = s.int(.defaultCertificate, default: 0, in: 0...max(0, certificates.count - 1))
        tls.strictSNI = s.bool(.strictSNI, default: false)
        tls.minVersion = s.choice(.minVersion, default: .tls12)
        tls.sessionTickets = s.bool(.sessionTickets, default: true)
        switch s[.ticketKeyFile] {
        case nil, .null?: break
        case .string(let file)? where !file.isEmpty: tls.ticketKeyFile = file
        case let other?:
            s.problem(.ticketKeyFile, "expected a file name (at least 3 base64 keys of 80 bytes), got \(other.kindDescription)")
        }
        if let c = s.section(.clientCertificates, of: ClientCertificateKey.self) {
            tls.clientCertificates = readClientCertificates(c)
        }
        return certificates.isEmpty ? nil : tls
    }

    /// `client_certificates`; nil when `ca_file` is missing (recorded). The CA file itself is read where the
    /// certificates are: at start, by `--check-config` and on reload.
    static func readClientCertificates(_ s: ConfigSection<ClientCertificateKey>) -> LBConfig.ClientCertificates? {
        let what = "the PEM file of the CAs that issue client certificates"
        switch s[.caFile] {
        case nil: s.problem(.caFile, "missing (required): \(what)")
        case .string("")?: s.problem(.caFile, "must not be empty: \(what)")
        default: break
        }
        let caFile = s.string(.caFile, default: "")
        var client = LBConfig.ClientCertificates(caFile: caFile)
        client.mode = s.choice(.mode, default: client.mode)
        client.verifyDepth = s.int(
            .verifyDepth, default: client.verifyDepth, in: 0...TLSClientCertificates.maxVerifyDepth)
        client.subjectHeader = s.parsed(.subjectHeader, default: nil) { (name: String) throws(ConfigValueError) in
            if let problem = OwnedRequestField.problem(withName: name) { throw ConfigValueError(problem) }
            return name
        }
        return caFile.isEmpty ? nil : client
    }

    /// A `{"cert": FILE, "key": FILE}` object (a listener's certificate, or the client certificate lb presents
    /// to backends); nil after recording what is missing or wrong.
    static func readCertificatePair(
        _ value: JSONValue, path: String, problems: ProblemList
    ) -> LBConfig.TLS.Certificate? {
        guard let c = ConfigSection<CertificateKey>(value, path: path, problems: problems) else { return nil }
        let cert = c.string(.cert, default: "")
        let key = c.string(.key, default: "")
        if cert.isEmpty { c.problem(.cert, "missing (required): the certificate chain's PEM file") }
        if key.isEmpty { c.problem(.key, "missing (required): the private key's PEM file") }
        return cert.isEmpty || key.isEmpty ? nil : .init(cert: cert, key: key)
    }
}

import LBCore
import LBHTTP
import LBTLS
import LBUV

extension ProxyServer {
    /// The OpenSSL context of one TLS listener: its certificates loaded and checked (a file that cannot be
    /// read, a key that does not match, an expired certificate: the error names the file and the problem), and
    /// the client CA file too when it asks for client certificates, and its `ticket_key_file`. Without a key
    /// file, tickets are sealed with `ticketKeys` (the running context's, on a reload, so sessions survive it),
    /// or new random keys.
    static func makeTLSContext(
        _ tls: LBConfig.TLS, http2: Bool = true, ticketKeys: TLSTicketKeys? = nil
    ) throws(SetupError) -> TLSListenerContext {
        let client = tls.clientCertificates
        let config = TLSServerConfig(
            certificates: tls.certificates.map { TLSCertificateFiles(certificateChain: $0.cert, privateKey: $0.key) },
            defaultCertificate: tls.defaultCertificate, strictSNI: tls.strictSNI,
            minimumVersion: tls.minVersion == .tls13 ? .tls1_3 : .tls1_2,             // h2 first: lb's preference wins when the client offers both (RFC 7301 §3.2).
            alpnProtocols: http2 ? ["h2", "http/1.1", "http/1.0"] : ["http/1.1", "http/1.0"],
            sessionTickets: tls.sessionTickets,
            clientCertificates: client.map {
                TLSClientCertificates(
                    caFile: $0.caFile, mode: $0.mode == .required ? .required : .optional, verifyDepth: $0.verifyDepth)
            },
            ticketKeyFile: tls.ticketKeyFile)
        var subjectField: OwnedRequestField?
        if let name = client?.subjectHeader {
            // The loader checked the name; a config built in code without it fails here, not on a request.
            guard let field = OwnedRequestField(name: name) else {
                let problem = OwnedRequestField.problem(withName: name) ?? "not usable"
                throw SetupError("client_certificates.subject_header: \(problem)")
            }
            subjectField = field
        }
        do {
            return TLSListenerContext(
                tls: try TLSServerContext(config: config, ticketKeys: ticketKeys), subjectField: subjectField)
        } catch {
            throw SetupError(error.description)
        }
    }

    /// A successor's ticket keys for a TLS listener: with no `ticket_key_file`, a fresh key to seal tickets and
    /// the keys `inherited` (the matching listener of the previous process) carried, so sessions made before
    /// the upgrade resume after it; nil (new random keys, or the file) otherwise. `start()` wipes the hand-off's
    /// copy of the keys once every listener has its context.
    static func carriedTicketKeys(
        _ tls: LBConfig.TLS, _ inherited: HandOff.ListenerGroup?
    ) throws(TLSConfigError) -> TLSTicketKeys? {
        guard let carried = inherited?.ticketKeys, !carried.isEmpty else { return nil }
        guard tls.ticketKeyFile == nil, tls.sessionTickets else { return nil }
        return try TLSTicketKeys.succeeding(carried)
    }

    /// Loads every TLS listener's certificates again, with `source`'s TLS settings (the reloaded file, or the
    /// running config to pick up renewed files), and publishes them all or none: one bad file keeps every old
    /// certificate, and the returned problems (also logged) name it. Open connections keep the certificate
    /// they were served; the next handshake on any worker gets the new one. Runs on the control loop.
    /// With `dryRun` the files are loaded and checked and nothing is published.
    @discardableResult
    func reloadCertificates(_ source: LBConfig, dryRun: Bool = false) -> [String] {
        let wanted = source.effectiveListeners.compactMap(\.tls)
        let http2 = source.effectiveListeners.filter { $0.tls != nil }.map(\.http2)
        guard !tlsListeners.isEmpty || !wanted.isEmpty else { return [] }
        guard wanted.count == tlsListeners.count else {
            let problem = "the file has \(wanted.count) TLS listeners and \(tlsListeners.count) are running; "
                + "listeners change only on restart"
            logger.warning("TLS certificates not reloaded", metadata: ["reason": "\(problem)"])
            return [problem]
        }
        var fresh: [TLSListenerContext] = []
        var problems: [String] = []
        for (i, tls) in wanted.enumerated() {
            // Process-local ticket keys carry over, so clients keep resuming; a key file is read again.
            let running = tlsListeners[i].tls?.load().tls.ticketKeys
            do {
                fresh.append(try ProxyServer.makeTLSContext(
                    tls, http2: http2[i], ticketKeys: running?.file == nil ? running : nil))
            } catch {
                problems.append("TLS listener \(i): \(error)")
            }
        }
        guard problems.isEmpty else {
            logger.error("TLS certificates not reloaded; the running ones stay", metadata: [
                "problems": "\(problems.joined(separator: "; "))",
            ])
            return problems
        }
        if dryRun { return [] }
        for (listener, context) in zip(tlsListeners, fresh) { listener.tls?.publish(context) }
        // Later reloads from the admin API read the same files.
        var tlsIndex = 0
        for i in config.listeners.indices where config.listeners[i].tls != nil {
            config.listeners[i].tls = wanted[tlsIndex]
            tlsIndex += 1
        }
        logger.info("TLS certificates reloaded", metadata: [
            "certificates": "\(fresh.reduce(0) { $0 + $1.tls.certificates.count })",
        ])
        return []
    }
}

/// The client contexts of one routing state being built: one per distinct set of upstream TLS settings, taken
/// over from the previous state when its settings are unchanged (so an admin change keeps every pooled TLS
/// connection and session), loaded otherwise.
struct TLSClientContexts {
    private var byConfig: [TLSClientConfig: TLSClientContext] = [:]

    init(previous: RoutingState?) {
        for b in previous?.backends ?? [] {
            if let tls = b.tls { byConfig[tls.context.config] = tls.context }
        }
    }

    /// What connections to `server` use; nil for plain TCP. Throws naming the server and the file at fault.
    mutating func backendTLS(_ settings: LBConfig.UpstreamTLS?, server: ServerSpec) throws(SetupError) -> BackendTLS? {
        guard let settings else { return nil }
        let config = Self.clientConfig(settings)
        let context: TLSClientContext
        if let known = byConfig[config] {
            context = known
        } else {
            do {
                context = try TLSClientContext(config: config)
            } catch {
                throw SetupError("TLS to server \(server.id): \(error)")
            }
            byConfig[config] = context
        }
        let verifyName = settings.serverName ?? server.host
        return BackendTLS(
            context: context, serverName: TLSClientSession.isIPAddress(verifyName) ? nil : verifyName,
            verifyName: verifyName)
    }

    static func clientConfig(_ settings: LBConfig.UpstreamTLS) -> TLSClientConfig {
        TLSClientConfig(
            caFile: settings.caFile, verify: settings.verify,
            clientCertificate: settings.clientCertificate.map {
                TLSCertificateFiles(certificateChain: $0.cert, privateKey: $0.key)
            },
            minimumVersion: settings.minVersion == .tls13 ? .tls1_3 : .tls1_2, alpnProtocols: ["http/1.1"],
            sessionReuse: settings.sessionReuse)
    }
}

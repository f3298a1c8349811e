import LBH2

/// Which protocol a client speaks, decided once from its first bytes: HTTP/2 when TLS settled on ALPN `h2`, or
/// when a plain connection opens with the h2c preface (RFC 9113 §3.3, prior knowledge); HTTP/1.x otherwise.
extension ClientConnection {
    func chooseProtocol(_ bytes: UnsafeRawBufferPointer) {
        guard offersHTTP2 else { return http1(bytes) }
        if let tls {
            // The handshake is complete once plaintext arrives: ALPN is settled.
            if tls.session.negotiatedALPN == "h2" { return startHTTP2(bytes) }
            return http1(bytes)
        }
        // The preface can arrive in pieces: keep what matches so far, decide once it is complete or differs.
        let preface = H2Session.preface
        let have = prefacePrefix.count
        var i = 0
        while have + i < preface.count && i < bytes.count {
            if bytes[i] != preface[have + i] {
                let all = prefacePrefix + Array(bytes)
                prefacePrefix = []
                return all.withUnsafeBytes { http1($0) }
            }
            i += 1
        }
        if have + i < preface.count {
            prefacePrefix.append(contentsOf: bytes)
            return
        }
        if have == 0 { return startHTTP2(bytes) }
        let all = prefacePrefix + Array(bytes)
        prefacePrefix = []
        all.withUnsafeBytes { startHTTP2($0) }
    }

    private func http1(_ bytes: UnsafeRawBufferPointer) {
        choosingProtocol = false
        worker.counters.http1Connections &+= 1
        streamRead(bytes)
    }

    /// From now on this connection's stream events go to an `H2Connection` (its own timeouts included).
    private func startHTTP2(_ bytes: UnsafeRawBufferPointer) {
        choosingProtocol = false
        timer.enter(.none, now: 0, limits: worker.timerLimits)
        guard let conn = H2Connection(client: self, stream: stream) else {
            close()
            return
        }
        h2 = conn
        conn.streamRead(bytes)
    }
}

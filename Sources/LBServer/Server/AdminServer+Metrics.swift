import Foundation
import LBCore
import LBTLS

/// `GET /metrics`: the same numbers as `/api/stats`, in the Prometheus text format (`PrometheusText`), with
/// conventional names (`_total` counters, base units: seconds and bytes) and a `server` label per backend.
/// Every metric is listed with its type and labels in the README's "Observability" section.
///
/// Threads: control loop, from `stats` (collected from every worker just before) and the health records.
/// Per-server series cover the servers in the current routing state; a removed server's series disappear
/// (Prometheus treats that as the end of the series, and `rate()` copes with a counter that restarts).
extension AdminServer {
    func metricsText() -> String {
        var m = PrometheusText()
        let state = server.routing.load()
        let w = stats.workers
        let now = server.loop.now

        m.family("lb_build_info", .gauge, "Always 1; the version label says which lb is running.")
        m.sample("lb_build_info", [("version", LBVersion.current)], 1)
        m.family("lb_start_time_seconds", .gauge, "Unix time the balancer started.")
        m.sample("lb_start_time_seconds", [], server.startedAt.timeIntervalSince1970.rounded())
        m.family("lb_config_generation", .gauge, "Generation of the routing state (1 at start, +1 per change).")
        m.sample("lb_config_generation", [], state.generation)
        if let stateFile = server.stateFile {
            // Only with a state file, so that no series suggests persistence where there is none.
            var rejected = 0
            if case .rejected = stateFile.outcome { rejected = 1 }
            m.family(
                "lb_state_file_rejected", .gauge,
                "1 when the last read of the state file (start or SIGHUP) rejected it and the config was used alone.")
            m.sample("lb_state_file_rejected", [], rejected)
            m.family("lb_state_file_rejections_total", .counter, "Reads of the state file rejected since start.")
            m.sample("lb_state_file_rejections_total", [], stateFile.rejections)
        }
        if let source = server.etcdSource {
            // Only with an etcd source.
            m.family("lb_source_stale", .gauge, "1 while the server set is not known to be etcd's current one.")
            m.sample("lb_source_stale", [], source.isCurrent ? 0 : 1)
            m.family(
                "lb_source_stale_seconds", .gauge,
                "Seconds since the server set was last known to be etcd's current one (0 while watching).")
            m.sample("lb_source_stale_seconds", [], server.etcdStaleSeconds(source))
            m.family("lb_source_revision", .gauge, "The etcd revision the server set reflects.")
            m.sample("lb_source_revision", [], Int(source.set.revision))
            m.family("lb_source_resyncs_total", .counter, "Full reads of etcd after the first (compaction, restore).")
            m.sample("lb_source_resyncs_total", [], source.resyncs)
            m.family(
                "lb_source_failures_total", .counter, "Calls to etcd that failed (each moves to the next endpoint).")
            m.sample("lb_source_failures_total", [], source.failures)
            m.family(
                "lb_source_rejected_values_total", .counter,
                "Values under the servers prefix that were not a valid server.")
            m.sample("lb_source_rejected_values_total", [], source.set.rejectedTotal)
        }
        if let dns = server.dnsSource { dnsMetrics(&m, dns) }
        m.family("lb_workers", .gauge, "Worker event loops carrying traffic.")
        m.sample("lb_workers", [], stats.workerCount)
        m.family(
            "lb_loop_coalesced_sleeps_total", .counter,
            "Timed sleeps the worker loops took to collect events instead of waking for each (coalesce_us).")
        m.sample("lb_loop_coalesced_sleeps_total", [], stats.coalescedSleeps)

        m.family("lb_connections_open", .gauge, "Client connections open now.")
        m.sample("lb_connections_open", [], stats.openConnections)
        m.family(
            "lb_connections_http1_active", .gauge,
            "HTTP/1.1 client connections reading or answering a request; the rest of the open HTTP/1.1 ones are idle.")
        m.sample("lb_connections_http1_active", [], stats.http1Active)
        m.family("lb_connections_total", .counter, "Client connections accepted.")
        m.sample("lb_connections_total", [], w.connectionsTotal)
        m.family("lb_protocol_connections_total", .counter, "Client connections by the protocol they spoke.")
        m.sample("lb_protocol_connections_total", [("protocol", "http1")], w.http1Connections)
        m.sample("lb_protocol_connections_total", [("protocol", "h2")], w.h2.connections)
        m.family("lb_protocol_requests_total", .counter, "Requests by protocol (an HTTP/2 request is one stream).")
        m.sample("lb_protocol_requests_total", [("protocol", "http1")], w.requests &- w.h2.streams)
        m.sample("lb_protocol_requests_total", [("protocol", "h2")], w.h2.streams)
        m.family("lb_h2_connections_open", .gauge, "HTTP/2 client connections open now.")
        m.sample("lb_h2_connections_open", [], w.h2.open)
        m.family(
            "lb_h2_streams_refused_total", .counter,
            "HTTP/2 streams refused before any exchange: over the concurrency limit or while draining.")
        m.sample("lb_h2_streams_refused_total", [], w.h2.refusedStreams)
        m.family("lb_h2_goaways_sent_total", .counter, "GOAWAY frames sent to clients, by reason.")
        for reason in H2GoawayReason.allCases {
            m.sample("lb_h2_goaways_sent_total", [("reason", reason.name)], w.h2.goaways[reason.rawValue])
        }
        m.family("lb_h2_goaways_received_total", .counter, "GOAWAY frames received from clients.")
        m.sample("lb_h2_goaways_received_total", [], w.h2.goawaysReceived)
        m.family("lb_h2_resets_sent_total", .counter, "RST_STREAM frames sent to clients, by error code.")
        for reason in H2ResetReason.allCases {
            m.sample("lb_h2_resets_sent_total", [("reason", reason.name)], w.h2.resetsSent[reason.rawValue])
        }
        m.family("lb_h2_resets_received_total", .counter, "RST_STREAM frames received from clients.")
        m.sample("lb_h2_resets_received_total", [], w.h2.resetsReceived)
        m.family(
            "lb_connections_refused_total", .counter, "Client connections closed at once: over max_client_connections.")
        m.sample("lb_connections_refused_total", [], w.connectionsRefused)
        m.family(
            "lb_connections_refused_per_client_total", .counter,
            "Client connections closed at once: their address already held max_connections_per_client.")
        m.sample("lb_connections_refused_per_client_total", [], w.connectionsRefusedPerClient)
        m.family(
            "lb_client_timeouts_total", .counter,
            "Client connections closed by a timeout: client_header (head or handshake late), client_idle (nothing "
                + "sent), client_send (response not read).")
        m.sample("lb_client_timeouts_total", [("timeout", "client_header")], w.headerTimeouts)
        m.sample("lb_client_timeouts_total", [("timeout", "client_idle")], w.idleTimeouts)
        m.sample("lb_client_timeouts_total", [("timeout", "client_send")], w.sendTimeouts)
        m.family(
            "lb_client_slow_reader_pauses_total", .counter,
            "Times a client's socket was full and its backend was paused until it read what lb held.")
        m.sample("lb_client_slow_reader_pauses_total", [], w.slowReaderPauses)
        m.family(
            "lb_tls_failures_total", .counter,
            "TLS client connections closed on a failed handshake or a record that did not decrypt.")
        m.sample("lb_tls_failures_total", [], w.tlsFailures)
        m.family(
            "lb_tls_failure_reasons_total", .counter,
            "The failures of lb_tls_failures_total by reason (protocol_version, no_shared_cipher, not_tls, ...).")
        for reason in TLSFailureReason.allCases {
            m.sample("lb_tls_failure_reasons_total", [("reason", reason.name)], w.tlsFailureReasons[reason.rawValue])
        }
        m.family(
            "lb_accepts_deferred_total", .counter,
            "New plain connections left in the accept queue for the next loop turn by limits.accepts_per_turn.")
        m.sample("lb_accepts_deferred_total", [], w.acceptsDeferred)
        m.family(
            "lb_tls_accepts_deferred_total", .counter,
            "New TLS connections left in the accept queue for a while by limits.tls_handshakes_per_turn/per_second.")
        m.sample("lb_tls_accepts_deferred_total", [("limit", "per_turn")], w.tlsAcceptsDeferred.perTurn)
        m.sample("lb_tls_accepts_deferred_total", [("limit", "per_second")], w.tlsAcceptsDeferred.perSecond)
        m.family(
            "lb_tls_client_certificates_refused_total", .counter,
            "TLS handshakes refused over the client certificate (also in lb_tls_failures_total), by reason.")
        for refusal in TLSClientCertificateRefusal.allCases {
            m.sample(
                "lb_tls_client_certificates_refused_total", [("reason", refusal.name)],
                w.clientCertificateRefusals[refusal.rawValue])
        }

        m.family("lb_requests_received_total", .counter, "Requests received from clients (every request head).")
        m.sample("lb_requests_received_total", [], w.requests)
        m.family("lb_requests_in_flight", .gauge, "Requests received whose response is not complete yet.")
        m.sample("lb_requests_in_flight", [], w.inFlight)
        m.family("lb_responses_total", .counter, "Responses sent to clients, by status class (proxied and generated).")
        for (cls, n) in zip(ClassCounts.names, w.responses.array) {
            m.sample("lb_responses_total", [("code_class", cls)], n)
        }
        m.family("lb_proxy_errors_total", .counter, "Responses the balancer generated itself, by status.")
        for cause in ProxyErrorCause.allCases {
            m.sample("lb_proxy_errors_total", [("status", String(cause.status))], w.proxyErrors[cause.rawValue])
        }
        m.family(
            "lb_requests_client_aborted_total", .counter,
            "Requests whose client closed or reset its connection before the response was complete.")
        m.sample("lb_requests_client_aborted_total", [], w.clientAborts)
        m.family(
            "lb_requests_uploads_aborted_total", .counter,
            "Of lb_requests_client_aborted_total, those whose request body was not complete (an upload cut short).")
        m.sample("lb_requests_uploads_aborted_total", [], w.uploadsAborted)
        m.family("lb_no_server_total", .counter, "Requests answered 503 because no server could take them.")
        m.sample("lb_no_server_total", [], w.noServer)
        m.family(
            "lb_panic", .gauge,
            "1 while panic routing is on and every server that could take requests is down: they go to down servers.")
        m.sample("lb_panic", [], state.isInPanic ? 1 : 0)
        m.family(
            "lb_panic_routed_total", .counter,
            "Attempts routed by the hash to a server down by health because none that could take them was up.")
        m.sample("lb_panic_routed_total", [], w.panicRouted)
        m.family("lb_bytes_total", .counter, "Bytes on client connections: in = received from clients, out = sent.")
        m.sample("lb_bytes_total", [("direction", "in")], w.bytesIn)
        m.sample("lb_bytes_total", [("direction", "out")], w.bytesOut)
        m.family("lb_request_duration_seconds", .histogram, "Whole request time: head received to response complete.")
        m.histogram("lb_request_duration_seconds", [], w.requestLatency)

        serverMetrics(&m, state: state, now: now)
        writeCertificateMetrics(&m)
        return m.text
    }

    /// The per-server families, each listing every server before the next family starts (the format's rule).
    private func serverMetrics(_ m: inout PrometheusText, state: RoutingState, now: UInt64) {
        let shares = state.snapshot.keyspaceShares()
        let servers = state.backends.enumerated().map { i, b in
            (b, [("server", b.spec.id)], stats.backends[b.spec.id] ?? StatsSnapshot.Backend(), shares[i],
             b.health.snapshot.state)
        }
        func gauge(_ name: String, _ help: String, _ value: (Backend, StatsSnapshot.Backend, Double) -> Double) {
            m.family(name, .gauge, help)
            for (b, labels, snap, share, _) in servers { m.sample(name, labels, value(b, snap, share)) }
        }
        func counter(_ name: String, _ help: String, _ value: (BackendCounters) -> UInt64) {
            m.family(name, .counter, help)
            for (_, labels, snap, _, _) in servers { m.sample(name, labels, value(snap.counters)) }
        }

        gauge("lb_server_up", "1 when health checks (active or passive) consider the server up.") { b, _, _ in
            b.isUp ? 1 : 0
        }
        gauge("lb_server_draining", "1 while an operator drains the server (no new requests).") { b, _, _ in
            b.isDraining ? 1 : 0
        }
        gauge("lb_server_weight", "Configured weight.") { b, _, _ in Double(b.spec.weight) }
        gauge("lb_server_keyspace_share", "Fraction of the keyspace the routing table gives the server (0-1).") {
            _, _, share in share
        }
        gauge("lb_upstream_connections_open", "Connections to the server open now (busy and pooled).") { _, s, _ in
            Double(s.activeConnections)
        }
        gauge("lb_upstream_connections_idle", "Pooled idle connections to the server.") { _, s, _ in
            Double(s.idleConnections)
        }
        gauge(
            "lb_upstream_connections_in_use", "Connections to the server open and not idle (connecting or busy)."
        ) { _, s, _ in Double(s.connectionsInUse) }
        gauge(
            "lb_upstream_pool_need",
            "Connections the idle pool keeps for the server: the recent peak in use, or its decaying estimate."
        ) { _, s, _ in Double(s.poolNeed) }
        gauge("lb_upstream_queue_length", "Requests waiting for the server, at its max_connections.") { _, s, _ in
            Double(s.queueLength)
        }
        gauge(
            "lb_upstream_learnt_limit",
            "Requests the workers let the server have at once since it shed connections (learn_server_limits); 0: none."
        ) { _, s, _ in Double(s.learntLimit) }
        gauge("lb_upstream_requests_in_flight", "Requests sent to the server and not answered yet.") { _, s, _ in
            Double(s.inFlight)
        }

        m.family("lb_requests_total", .counter, "Responses received from the server, by status class.")
        for (_, labels, snap, _, _) in servers {
            for (cls, n) in zip(ClassCounts.names, snap.counters.responses.array) {
                m.sample("lb_requests_total", labels + [("code_class", cls)], n)
            }
        }
        counter("lb_upstream_attempts_total", "Attempts to send a request to the server (retries included).") {
            $0.requests
        }
        counter("lb_upstream_connections_total", "Connections opened to the server.") { $0.connectsOpened }
        counter("lb_upstream_connection_reuses_total", "Requests sent on a pooled connection.") { $0.reused }
        counter(
            "lb_upstream_pool_purged_total", "Idle connections to the server closed by the pool purge (demand fell)."
        ) { $0.purged }
        counter(
            "lb_upstream_pool_full_total",
            "Reusable connections to the server closed after a response because the pool was at upstream_pool_size."
        ) { $0.poolFull }
        counter("lb_upstream_queued_total", "Requests that waited for the server at its max_connections.") {
            $0.queued
        }
        counter(
            "lb_upstream_queue_timeouts_total", "Requests answered 503 after waiting timeouts.queue for the server."
        ) { $0.queueTimeouts }
        counter(
            "lb_upstream_queue_full_total", "Requests answered 503 at once: the server was at max_connections, its queue full."
        ) { $0.queueFull }
        counter(
            "lb_upstream_limits_learnt_total",
            "Times the server closed keep-alive connections under load and a worker set or lowered its learnt limit."
        ) { $0.limitsLearnt }
        counter("lb_upstream_connect_errors_total", "Connects to the server that failed or timed out.") {
            $0.connectErrors
        }
        counter(
            "lb_upstream_response_errors_total", "Exchanges that failed after connecting (reset, timeout, garbage)."
        ) { $0.responseErrors }
        m.family("lb_upstream_tls_handshakes_total", .counter, "TLS handshakes with the server, by whether a session was resumed.")
        for (_, labels, snap, _, _) in servers {
            let c = snap.counters
            m.sample("lb_upstream_tls_handshakes_total", labels + [("resumed", "true")], c.tlsResumed)
            m.sample("lb_upstream_tls_handshakes_total", labels + [("resumed", "false")], c.tlsHandshakes &- c.tlsResumed)
        }
        m.family(
            "lb_upstream_tls_failures_total", .counter,
            "TLS handshakes with the server that failed: its certificate did not verify, or the handshake failed.")
        for (_, labels, snap, _, _) in servers {
            let c = snap.counters
            m.sample("lb_upstream_tls_failures_total", labels + [("reason", "certificate")], c.tlsCertificateRejections)
            m.sample("lb_upstream_tls_failures_total", labels + [("reason", "handshake")], c.tlsHandshakeFailures)
        }
        counter("lb_upstream_retries_total", "Requests moved to another server after failing here once sent.") {
            $0.retries
        }
        counter("lb_upstream_redispatches_total", "Requests moved to another server after a failed connect here.") {
            $0.redispatches
        }
        m.family("lb_upstream_bytes_total", .counter, "Bytes to (out) and from (in) the server.")
        for (_, labels, snap, _, _) in servers {
            m.sample("lb_upstream_bytes_total", labels + [("direction", "in")], snap.counters.bytesIn)
            m.sample("lb_upstream_bytes_total", labels + [("direction", "out")], snap.counters.bytesOut)
        }
        m.family("lb_upstream_connect_duration_seconds", .histogram, "TCP connect time to the server.")
        for (_, labels, snap, _, _) in servers {
            m.histogram("lb_upstream_connect_duration_seconds", labels, snap.counters.connectLatency)
        }
        m.family("lb_upstream_response_duration_seconds", .histogram, "Request sent to response head received.")
        for (_, labels, snap, _, _) in servers {
            m.histogram("lb_upstream_response_duration_seconds", labels, snap.counters.responseLatency)
        }

        m.family("lb_health_check_failures_total", .counter, "Active health checks that failed or timed out.")
        for (_, labels, _, _, h) in servers { m.sample("lb_health_check_failures_total", labels, h.failures) }
        m.family("lb_health_transitions_total", .counter, "Up/down changes of the server's health state.")
        for (_, labels, _, _, h) in servers { m.sample("lb_health_transitions_total", labels, h.transitions) }
        m.family("lb_server_downtime_seconds_total", .counter, "Seconds the server has spent down.")
        for (_, labels, _, _, h) in servers {
            m.sample("lb_server_downtime_seconds_total", labels, Double(h.downtimeMs(now: now)) / 1000)
        }
        m.family("lb_health_last_change_seconds", .gauge, "Seconds since the server's health state last changed.")
        for (_, labels, _, _, h) in servers {
            let sinceChange = h.msSinceChange(now: now, notBefore: startedAtLoop)
            m.sample("lb_health_last_change_seconds", labels, Double(sinceChange) / 1000)
        }
    }
}

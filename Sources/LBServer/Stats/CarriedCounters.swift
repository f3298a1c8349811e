import Foundation
import LBCore
import LBTLS

/// The counters a hot upgrade carries from the old process to its successor, which adds them to its own, so
/// `/api/stats` totals and `/metrics` counters go on from where the old process was instead of restarting at
/// zero (a Prometheus counter that drops is read as a reset, and `rate()` has to guess across it).
///
/// Carried: the process-wide totals (connections, requests, responses by class, proxy errors by status, bytes,
/// timeouts, aborts, TLS failures by reason, HTTP/2 counters, loop sleeps), the request-duration histogram
/// (its buckets add), and per server id every counter of `BackendCounters` but the peak, with its connect and
/// response histograms. Not carried: gauges (open connections, requests in flight, pool sizes, peaks: they
/// describe the process that has them). A server's counters are dropped when the successor has no server of
/// that id at the same host and port (`keepServers`), and when the successor later removes the server.
///
/// Built from the table of fields below, in both directions, so a field is carried exactly when it is named
/// there: gauges are zero by construction. Field names, not positions, cross the wire, so a successor with more
/// or fewer reasons in an enum reads what it knows (a name it does not know is dropped) and counts the rest
/// from zero.
///
/// Wire format (`format` 1), a JSON object: `{"format": 1, "process": {NAME: n, ...}, "request_latency":
/// [[µs, n], ...], "servers": [{"id", "host", "port", "counters": {NAME: n, ...}, "connect_latency": [...],
/// "response_latency": [...]}]}`. Histograms are sparse: one `[value, count]` per non-empty bucket.
struct CarriedCounters {
    /// The format this build writes and reads; a successor names it in `ready` and gets counters only from a
    /// process that writes it.
    static let format = 1

    /// Counters only (every gauge zero), per server id for the servers kept.
    private(set) var snapshot = StatsSnapshot()
    /// The address each server's counters were counted against.
    private(set) var addresses: [String: HostPort] = [:]

    init() {}

    /// The counters of `total` (a collected snapshot, carried base included), for the servers of `servers`.
    init(_ total: StatsSnapshot, servers: [ServerSpec]) {
        snapshot.coalescedSleeps = total.coalescedSleeps
        Self.process.copy(from: total.workers, to: &snapshot.workers)
        snapshot.workers.requestLatency = total.workers.requestLatency
        for spec in servers {
            guard let b = total.backends[spec.id] else { continue }
            var kept = StatsSnapshot.Backend()
            Self.server.copy(from: b.counters, to: &kept.counters)
            kept.counters.connectLatency = b.counters.connectLatency
            kept.counters.responseLatency = b.counters.responseLatency
            snapshot.backends[spec.id] = kept
            addresses[spec.id] = HostPort(host: spec.host, port: spec.port)
        }
    }

    /// Keeps the counters of the servers `state` has under the same id at the same host and port; drops the rest.
    mutating func keepServers(of state: RoutingState) {
        for (id, address) in addresses {
            let b = state.backend(id: id)
            if b?.spec.host != address.host || b?.spec.port != address.port { dropServer(id) }
        }
    }

    /// A server the successor removed: a server added again under that id counts from zero, like any new one.
    mutating func dropServer(_ id: String) {
        snapshot.backends[id] = nil
        addresses[id] = nil
    }
}

// MARK: the wire format

extension CarriedCounters {
    /// The JSON object, within `budget` bytes of encoded JSON when it can be: over it, the histograms are left
    /// out, then the per-server counters (the answer it travels in must stay under the control socket's line
    /// limit; what is left out counts from zero in the successor).
    func json(budget: Int = ControlMessage.maxLineBytes / 2) -> [String: Any] {
        for (histograms, servers) in [(true, true), (false, true), (false, false)] {
            let object = json(histograms: histograms, servers: servers)
            let size = (try? JSONSerialization.data(withJSONObject: object).count) ?? Int.max
            if size <= budget || !servers { return object }
        }
        return [:]  // not reached: the last attempt returns
    }

    func json(histograms: Bool, servers: Bool) -> [String: Any] {
        var object: [String: Any] = ["format": Self.format, "process": Self.process.encode(snapshot.workers)]
        object["process_extra"] = ["coalesced_sleeps": snapshot.coalescedSleeps]
        if histograms { object["request_latency"] = snapshot.workers.requestLatency.buckets }
        guard servers else { return object }
        object["servers"] = addresses.keys.sorted().compactMap { id -> [String: Any]? in
            guard let b = snapshot.backends[id], let address = addresses[id] else { return nil }
            var entry: [String: Any] = [
                "id": id, "host": address.host, "port": address.port, "counters": Self.server.encode(b.counters),
            ]
            if histograms {
                entry["connect_latency"] = b.counters.connectLatency.buckets
                entry["response_latency"] = b.counters.responseLatency.buckets
            }
            return entry
        }
        return object
    }

    /// Reads the object `json` wrote. Missing fields and names this build does not know count as zero; throws
    /// when it is not a format-1 object at all (the caller then carries nothing).
    init(json object: [String: Any]) throws(ControlError) {
        guard (object["format"] as? NSNumber)?.intValue == Self.format else {
            throw ControlError("carried counters: format \(object["format"].map { "\($0)" } ?? "missing"), "
                + "this lb-server reads \(Self.format)")
        }
        guard let process = object["process"] as? [String: Any] else {
            throw ControlError("carried counters: no process counters")
        }
        Self.process.decode(process, into: &snapshot.workers)
        if let extra = object["process_extra"] as? [String: Any] {
            snapshot.coalescedSleeps = Self.count(extra["coalesced_sleeps"]) ?? 0
        }
        snapshot.workers.requestLatency.add(buckets: object["request_latency"])
        for entry in object["servers"] as? [[String: Any]] ?? [] {
            guard let id = entry["id"] as? String, let host = entry["host"] as? String,
                let port = (entry["port"] as? NSNumber)?.intValue
            else { continue }
            var b = StatsSnapshot.Backend()
            Self.server.decode(entry["counters"] as? [String: Any] ?? [:], into: &b.counters)
            b.counters.connectLatency.add(buckets: entry["connect_latency"])
            b.counters.responseLatency.add(buckets: entry["response_latency"])
            snapshot.backends[id] = b
            addresses[id] = HostPort(host: host, port: port)
        }
    }

    /// A JSON number as a count: nil unless a non-negative integer.
    static func count(_ value: Any?) -> UInt64? {
        guard let n = value as? NSNumber, n.doubleValue >= 0, n.doubleValue == n.doubleValue.rounded() else {
            return nil
        }
        return n.uint64Value
    }
}

// MARK: which fields

/// The counters of one `Root` by wire name: scalars, and arrays indexed by an enum's raw value whose cases
/// are named `prefix.name`.
struct CounterFields<Root> {
    var scalars: [(String, WritableKeyPath<Root, UInt64>)]
    var lists: [(prefix: String, path: WritableKeyPath<Root, [UInt64]>, names: [String])] = []

    func copy(from source: Root, to target: inout Root) {
        for (_, path) in scalars { target[keyPath: path] = source[keyPath: path] }
        for list in lists { target[keyPath: list.path] = source[keyPath: list.path] }
    }

    func encode(_ root: Root) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (name, path) in scalars { out[name] = root[keyPath: path] }
        for list in lists {
            for (i, name) in list.names.enumerated() where i < root[keyPath: list.path].count {
                out[list.prefix + "." + name] = root[keyPath: list.path][i]
            }
        }
        return out
    }

    func decode(_ object: [String: Any], into root: inout Root) {
        for (name, path) in scalars { root[keyPath: path] = CarriedCounters.count(object[name]) ?? 0 }
        for list in lists {
            for (i, name) in list.names.enumerated() where i < root[keyPath: list.path].count {
                root[keyPath: list.path][i] = CarriedCounters.count(object[list.prefix + "." + name]) ?? 0
            }
        }
    }
}

extension CarriedCounters {
    /// Every process-wide counter of `WorkerCounters`; `inFlight` and `h2.open` are gauges and stay out.
    static var process: CounterFields<WorkerCounters> {
        CounterFields(
            scalars: [
                ("connections_total", \.connectionsTotal), ("connections_refused", \.connectionsRefused),
                ("connections_refused_per_client", \.connectionsRefusedPerClient),
                ("header_timeouts", \.headerTimeouts), ("idle_timeouts", \.idleTimeouts),
                ("send_timeouts", \.sendTimeouts), ("slow_reader_pauses", \.slowReaderPauses),
                ("client_aborts", \.clientAborts), ("uploads_aborted", \.uploadsAborted),
                ("accept_errors", \.acceptErrors), ("requests", \.requests), ("no_server", \.noServer),
                ("panic_routed", \.panicRouted),
                ("key_fallbacks", \.keyFallbacks),
                ("responses_1xx", \.responses.counts.0), ("responses_2xx", \.responses.counts.1),
                ("responses_3xx", \.responses.counts.2), ("responses_4xx", \.responses.counts.3),
                ("responses_5xx", \.responses.counts.4),
                ("bytes_in", \.bytesIn), ("bytes_out", \.bytesOut), ("tls_failures", \.tlsFailures),
                ("accepts_deferred", \.acceptsDeferred),
                ("tls_accepts_deferred_per_turn", \.tlsAcceptsDeferred.perTurn),
                ("tls_accepts_deferred_per_second", \.tlsAcceptsDeferred.perSecond),
                ("http1_connections", \.http1Connections), ("h2_connections", \.h2.connections),
                ("h2_streams", \.h2.streams), ("h2_refused_streams", \.h2.refusedStreams),
                ("h2_goaways_received", \.h2.goawaysReceived), ("h2_resets_received", \.h2.resetsReceived),
            ],
            lists: [
                ("proxy_errors", \.proxyErrors, ProxyErrorCause.allCases.map { String($0.status) }),
                ("tls_failure_reasons", \.tlsFailureReasons, TLSFailureReason.allCases.map(\.name)),
                ("tls_client_certificates_refused", \.clientCertificateRefusals,
                 TLSClientCertificateRefusal.allCases.map(\.name)),
                ("h2_goaways_sent", \.h2.goaways, H2GoawayReason.allCases.map(\.name)),
                ("h2_resets_sent", \.h2.resetsSent, H2ResetReason.allCases.map(\.name)),
            ])
    }

    /// Every counter of `BackendCounters`; `peakConnections` and `peakQueue` are gauges and stay out.
    static var server: CounterFields<BackendCounters> {
        CounterFields(scalars: [
            ("requests", \.requests),
            ("responses_1xx", \.responses.counts.0), ("responses_2xx", \.responses.counts.1),
            ("responses_3xx", \.responses.counts.2), ("responses_4xx", \.responses.counts.3),
            ("responses_5xx", \.responses.counts.4),
            ("connects_opened", \.connectsOpened), ("connect_errors", \.connectErrors),
            ("response_errors", \.responseErrors), ("reused", \.reused), ("pool_purged", \.purged),
            ("pool_full", \.poolFull), ("retries", \.retries), ("redispatches", \.redispatches),
            ("queued", \.queued), ("queue_timeouts", \.queueTimeouts), ("queue_full", \.queueFull),
            ("limits_learnt", \.limitsLearnt),
            ("bytes_in", \.bytesIn), ("bytes_out", \.bytesOut),
            ("tls_handshakes", \.tlsHandshakes), ("tls_resumed", \.tlsResumed),
            ("tls_certificate_rejections", \.tlsCertificateRejections),
            ("tls_handshake_failures", \.tlsHandshakeFailures),
        ])
    }
}

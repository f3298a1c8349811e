import XCTest

@testable import LBServer

/// Each object of the config file declares its keys once (a `ConfigKey` enum): the unknown-key check and the
/// suggestions come from that list, and every key in it is read.
final class ConfigKeyTableTests: XCTestCase {
    /// One object of the file: its key path, its declared keys, the members it needs to be valid, and the
    /// document that holds it (`wrap` puts the members in place).
    struct Section {
        var path: String
        var keys: [String]
        var base: [String: String] = [:]
        /// Members that a key needs beside it to be valid (an etcd key needs the etcd type), by key.
        var keyBases: [String: [String: String]] = [:]
        var wrap: (String) -> String

        init<Key: ConfigKey>(
            _ path: String, _: Key.Type, base: [String: String] = [:], keyBases: [String: [String: String]] = [:],
            wrap: ((String) -> String)? = nil
        ) {
            self.path = path
            keys = Key.allCases.map(\.rawValue)
            self.base = base
            self.keyBases = keyBases
            self.wrap = wrap ?? { #"{"\#(path)": {\#($0)}}"# }
        }

        /// The document with `base` and `members` (which win) in this object.
        func document(_ members: [String: String]) -> String {
            var all = base
            for key in members.keys { all.merge(keyBases[key] ?? [:]) { $1 } }
            all.merge(members) { $1 }
            return wrap(all.keys.sorted().map { #""\#($0)": \#(all[$0]!)"# }.joined(separator: ", "))
        }

        func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    }

    let sections = [
        Section("", ConfigLoader.TopLevelKey.self, wrap: { "{\($0)}" }),
        Section("admin", ConfigLoader.AdminKey.self),
        Section("routing", ConfigLoader.RoutingKey.self),
        Section("health_check", ConfigLoader.HealthCheckKey.self),
        Section(
            "servers[0]", ConfigLoader.ServerKey.self, base: ["host": #""h""#, "port": "1"],
            wrap: { #"{"servers": [{\#($0)}]}"# }),
        Section(
            "servers[0].health_check", ConfigLoader.HealthCheckKey.self,
            wrap: { #"{"servers": [{"host": "h", "port": 1, "health_check": {\#($0)}}]}"# }),
        Section("retries", ConfigLoader.RetriesKey.self),
        Section("timeouts", Timeout.self),
        Section("limits", ConfigLoader.LimitKey.self),
        Section("forwarding", ConfigLoader.ForwardingKey.self),
        Section("access_log", ConfigLoader.AccessLogKey.self),
        Section("stats", ConfigLoader.StatsKey.self),
        Section(
            "listeners[0]", ConfigLoader.ListenerKey.self, base: ["address": #""127.0.0.1:9443""#],
            wrap: { #"{"listeners": [{\#($0)}]}"# }),
        Section(
            "listeners[0].tls", ConfigLoader.TLSKey.self,
            base: ["certificates": #"[{"cert": "c", "key": "k"}, {"cert": "d", "key": "e"}]"#],
            wrap: { #"{"listeners": [{"address": "127.0.0.1:9443", "tls": {\#($0)}}]}"# }),
        Section(
            "listeners[0].tls.client_certificates", ConfigLoader.ClientCertificateKey.self,
            base: ["ca_file": #""ca.pem""#],
            wrap: {
                #"{"listeners": [{"address": "127.0.0.1:9443", "tls": {"certificates": [{"cert": "c", "key": "k"}], "#
                    + #""client_certificates": {\#($0)}}}]}"#
            }),
        Section(
            "listeners[0].tls.certificates[0]", ConfigLoader.CertificateKey.self,
            base: ["cert": #""c""#, "key": #""k""#],
            wrap: { #"{"listeners": [{"address": "127.0.0.1:9443", "tls": {"certificates": [{\#($0)}]}}]}"# }),
        Section("server_source", ConfigLoader.ServerSourceKey.self, keyBases: etcdKeyBases),
        Section(
            "server_source.dns", ConfigLoader.DNSKey.self, base: ["name": #""web.test""#, "port": "80"],
            wrap: { #"{"server_source": {"type": "dns", "dns": {\#($0)}}}"# }),
        Section("upstream_tls", ConfigLoader.UpstreamTLSKey.self),
        Section(
            "upstream_tls.client_certificate", ConfigLoader.CertificateKey.self,
            base: ["cert": #""c""#, "key": #""k""#],
            wrap: { #"{"upstream_tls": {"client_certificate": {\#($0)}}}"# }),
    ]

    /// An etcd source's keys are valid only with `type: etcd`, `endpoints` and `cluster`; a password needs a user.
    static let etcdKeyBases: [String: [String: String]] = {
        let etcd = [
            "type": #""etcd""#, "endpoints": #"["http://127.0.0.1:2379"]"#, "cluster": #""c""#,
        ]
        var bases: [String: [String: String]] = [:]
        for key in ["type", "endpoints", "cluster", "dial_timeout", "lease_ttl", "instance_id"] { bases[key] = etcd }
        bases["username"] = etcd.merging(["password": #""p""#]) { $1 }
        bases["password"] = etcd.merging(["username": #""u""#]) { $1 }
        bases["dns"] = ["type": #""dns""#]
        return bases
    }()

    func testAnUnknownKeyInEveryObjectIsRejectedByNameWithTheDeclaredKeys() {
        for section in sections {
            XCTAssertEqual(
                configProblems(section.document(["zzzzzz": "1"])),
                [
                    "\(section.keyPath("zzzzzz")): unknown key; valid keys here are "
                        + section.keys.joined(separator: ", ")
                ])
        }
    }

    func testAMisspelledKeySuggestsTheDeclaredOne() {
        for section in sections {
            for key in section.keys {
                XCTAssertEqual(
                    configProblems(section.document([key + "x": "1"])),
                    ["\(section.keyPath(key + "x")): unknown key (did you mean \(key)?)"])
            }
        }
    }

    /// A value unlike the default for every key: each must change what the file loads to, so no declared key
    /// is accepted and then ignored.
    static let samples: [String: String] = [
        "listen": #""127.0.0.1:9000""#, "workers": "2", "admin": #"{"token": "t"}"#, "routing": #"{"vnodes": 7}"#,
        "servers": #"[{"host": "h", "port": 1}]"#, "health_check": #"{"rise": 5}"#, "retries": #"{"max": 0}"#,
        "timeouts": #"{"client_idle": 1}"#, "limits": #"{"max_headers": 5}"#, "forwarding": #"{"forwarded": true}"#,
        "access_log": #"{"format": "json"}"#, "stats": #"{"latency": false}"#, "busy_polls": "5", "coalesce_us": "5",
        "admin.listen": #""127.0.0.1:9001""#, "admin.token": #""t""#,
        "routing.algorithm": #""rendezvous""#, "routing.hash": #""md5""#, "routing.key": #""host""#,
        "routing.vnodes": "7", "routing.ring_probes": "2", "routing.maglev_table_size": "101",
        "routing.bounded_load": "1.5",
        "servers[0].id": #""x""#, "servers[0].host": #""g""#, "servers[0].port": "2", "servers[0].weight": "3",
        "servers[0].health_check": #"{"rise": 5}"#,
        "retries.max": "0", "retries.per_try_timeout": #""1s""#,
        "limits.max_request_line": "5", "limits.max_header_bytes": "5", "limits.max_headers": "5",
        "limits.max_body_bytes": "5", "limits.max_client_connections": "5", "limits.upstream_pool_size": "5",
        "limits.max_connections_per_client": "5",
        "limits.tls_handshakes_per_turn": "null", "limits.tls_handshakes_per_second": "50",
        "limits.accepts_per_turn": "5",
        "limits.http2_max_concurrent_streams": "10", "listeners[0].http2": "false",
        "forwarding.x_forwarded_for": "false", "forwarding.x_forwarded_proto": "false",
        "forwarding.x_forwarded_host": "false", "forwarding.forwarded": "true", "forwarding.request_id": "false",
        "access_log.format": #""json""#, "access_log.path": #""/tmp/x.log""#, "stats.latency": "false",
        "listeners": #"[{"address": "127.0.0.1:9443"}]"#,
        "listeners[0].address": #""127.0.0.1:9444""#,
        "listeners[0].tls": #"{"certificates": [{"cert": "c", "key": "k"}]}"#,
        "listeners[0].tls.certificates": #"[{"cert": "x", "key": "y"}]"#,
        "listeners[0].tls.default_certificate": "1", "listeners[0].tls.strict_sni": "true",
        "listeners[0].tls.min_version": #""1.3""#, "listeners[0].tls.session_tickets": "false",
        "listeners[0].tls.ticket_key_file": #""keys.txt""#,
        "listeners[0].tls.client_certificates": #"{"ca_file": "ca.pem"}"#,
        "listeners[0].tls.client_certificates.ca_file": #""other.pem""#,
        "listeners[0].tls.client_certificates.mode": #""optional""#,
        "listeners[0].tls.client_certificates.subject_header": #""X-Client-Subject""#,
        "listeners[0].tls.client_certificates.verify_depth": "5",
        "listeners[0].tls.certificates[0].cert": #""x""#, "listeners[0].tls.certificates[0].key": #""y""#,
        "servers[0].tls": "true", "servers[0].max_connections": "10", "servers[0].max_queue": "5",
        "limits.server_max_connections": "100", "limits.server_max_queue": "10", "limits.learn_server_limits": "false",
        "upstream_tls": #"{"verify": false}"#, "upstream_tls.enabled": "false", "upstream_tls.ca_file": #""ca.pem""#,
        "upstream_tls.verify": "false", "upstream_tls.server_name": #""x.test""#,
        "upstream_tls.client_certificate": #"{"cert": "c", "key": "k"}"#, "upstream_tls.min_version": #""1.3""#,
        "upstream_tls.session_reuse": "false",
        "upstream_tls.client_certificate.cert": #""x""#, "upstream_tls.client_certificate.key": #""y""#,
        "server_source": #"{"state_file": "/var/lib/lb/state.json"}"#,
        "server_source.type": #""etcd""#, "server_source.state_file": #""/var/lib/lb/state.json""#,
        "server_source.endpoints": #"["http://127.0.0.1:2380"]"#, "server_source.cluster": #""d""#,
        "server_source.username": #""v""#, "server_source.password": #""q""#, "server_source.dial_timeout": #""1s""#,
        "server_source.lease_ttl": #""3s""#, "server_source.instance_id": #""lb-a""#,
        "server_source.dns": #"{"name": "web.test", "port": 80}"#,
        "server_source.dns.name": #""other.test""#, "server_source.dns.port": "81",
        "server_source.dns.resolvers": #"["127.0.0.1:5353"]"#, "server_source.dns.min_ttl": #""2s""#,
        "server_source.dns.max_ttl": #""1m""#, "server_source.dns.nxdomain_hold": #""5s""#,
        "server_source.dns.timeout": #""1s""#, "server_source.dns.family": #""ipv6""#,
    ]
    /// Keys whose only accepted value is their default, so no sample can change what the file loads to.
    static let singleValued: Set<String> = []
    /// Keys the object declares because it shares its key list with another, but that are refused there.
    static let refusedHere: Set<String> = ["servers[0].health_check.panic"]
    static let healthCheckSamples = [
        "enabled": "false", "type": #""tcp""#, "path": #""/h""#, "interval": #""3s""#, "timeout": #""2s""#,
        "rise": "5", "fall": "5", "expected_status": #""200""#, "passive_failures": "0", "panic": "false",
        "reuse_connection": "false",
    ]

    func testEveryDeclaredKeyIsRead() throws {
        var samples = Self.samples
        for timeout in Timeout.allCases { samples["timeouts.\(timeout.key)"] = "1" }
        for (key, value) in Self.healthCheckSamples {
            samples["health_check.\(key)"] = value
            samples["servers[0].health_check.\(key)"] = value
        }
        let declared = sections.flatMap { section in section.keys.map(section.keyPath) }
        XCTAssertEqual(Set(samples.keys), Set(declared), "a sample for every declared key")

        for section in sections {
            let baseline = try parseConfig(section.document([:]))
            for key in section.keys {
                guard let value = samples[section.keyPath(key)], !Self.singleValued.contains(section.keyPath(key))
                else { continue }
                if Self.refusedHere.contains(section.keyPath(key)) {
                    let problems = configProblems(section.document([key: value]))
                    XCTAssertEqual(problems.count, 1, "\(problems)")
                    XCTAssertTrue(problems.first?.hasPrefix(section.keyPath(key) + ": ") ?? false, "\(problems)")
                    continue
                }
                let config = try parseConfig(section.document([key: value]))
                // A server's override is recorded whenever it is non-empty: what counts is what it sets.
                let changed =
                    section.path == "servers[0].health_check"
                    ? config.healthCheck(forServer: "h:1") != config.healthCheck : config != baseline
                XCTAssertTrue(changed, "\(section.keyPath(key)) = \(value) changed nothing")
            }
        }
    }
}

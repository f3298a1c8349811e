import Foundation
import XCTest

/// The servers, clients and counters `MTLSTests` use.
extension MTLSTests {
    /// lb-server whose listeners are, in order: `required`, `optional` (both with `subject_header`) and one
    /// without client certificates.
    func startServer(sessionTickets: Bool = true) throws -> LBServerProcess {
        let client: [String: Any] = ["ca_file": certs.caCert, "subject_header": "X-Client-Subject"]
        var required = client
        required["mode"] = "required"
        var optional = client
        optional["mode"] = "optional"
        let listeners: [[String: Any]] = [
            ["address": "127.0.0.1:0", "tls": tls(client: required, sessionTickets: sessionTickets)],
            ["address": "127.0.0.1:0", "tls": tls(client: optional, sessionTickets: sessionTickets)],
            ["address": "127.0.0.1:0", "tls": tls(client: nil, sessionTickets: sessionTickets)],
        ]
        return try LBBinaries.startServer(
            backends: [backend.address], configFile: try writeConfigFile(["listeners": listeners]), listen: nil,
            proxyKind: .proxyTLS)
    }

    func tls(client: [String: Any]?, sessionTickets: Bool = true) -> [String: Any] {
        var tls: [String: Any] = [
            "certificates": [["cert": certs.cert("a"), "key": certs.key("a")]], "session_tickets": sessionTickets,
        ]
        if let client { tls["client_certificates"] = client }
        return tls
    }

    /// The three listeners' ports, from the `listening on ... (proxy, tls)` lines, which come in config order.
    func ports(_ lb: LBServerProcess) throws -> (required: Int, optional: Int, plain: Int) {
        var found: [Int] = []
        try eventually(timeout: 10, "three TLS listeners announced") {
            found = lb.process.log.split(separator: "\n").compactMap { line -> Int? in
                guard line.hasSuffix(" (proxy, tls)"), let address = line.split(separator: " ").dropLast(2).last,
                    let colon = address.lastIndex(of: ":")
                else { return nil }
                return Int(address[address.index(after: colon)...])
            }
            return found.count == 3
        }
        return (found[0], found[1], found[2])
    }

    /// `curl -sS --http1.1 --resolve a.test:PORT:127.0.0.1 --cacert ca.pem [--cert NAME --key NAME] EXTRA
    /// https://a.test:PORT/PATH...`. HTTP/1.1: these tests read the field lines as sent (HTTP/2 lowercases names)
    /// and curl's report of a refused certificate, which it sees only when it reads before it writes.
    func curl(
        _ port: Int, _ path: String, cert: String?, _ extra: [String] = [], paths: [String]? = nil
    ) -> (status: Int32, stdout: String, stderr: String) {
        var arguments = ["-sS", "--http1.1", "--max-time", "20", "--resolve", "a.test:\(port):127.0.0.1", "--cacert", certs.caCert]
        if let cert { arguments += ["--cert", certs.cert(cert), "--key", certs.key(cert)] }
        arguments += extra + (paths ?? [path]).map { "https://a.test:\(port)\($0)" }
        return run("curl", arguments, timeout: 30)
    }

    /// `openssl s_client -connect 127.0.0.1:PORT -servername a.test -CAfile ca.pem EXTRA` with `input` on stdin;
    /// stdout and stderr together.
    func sClient(port: Int, _ extra: [String], input: String? = nil) -> (status: Int32, output: String) {
        let r = ManagedProcess.run(
            "openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "a.test", "-CAfile", certs.caCert]
                + extra,
            input: input.map { Data($0.utf8) }, timeout: 20)
        return (r.status, String(decoding: r.stdout, as: UTF8.self) + r.stderr)
    }

    func run(
        _ executable: String, _ arguments: [String], timeout: TimeInterval
    ) -> (status: Int32, stdout: String, stderr: String) {
        let r = ManagedProcess.run(executable, arguments, timeout: timeout)
        return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
    }

    func occurrences(of needle: String, in text: String) -> Int {
        text.lowercased().components(separatedBy: needle.lowercased()).count - 1
    }

    func refusals(_ admin: AdminClient) throws -> (failures: Int, missing: Int, untrusted: Int) {
        let stats = try admin.call("GET", "/api/stats").json
        let connections = try XCTUnwrap(stats["connections"] as? [String: Any], "no connections in /api/stats")
        let refused = try XCTUnwrap(
            connections["tls_client_certificates_refused"] as? [String: Int],
            "no connections.tls_client_certificates_refused in /api/stats")
        return (
            try XCTUnwrap(connections["tls_failures"] as? Int), try XCTUnwrap(refused["missing"]),
            try XCTUnwrap(refused["untrusted"])
        )
    }
}

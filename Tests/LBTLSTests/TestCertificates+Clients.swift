import Foundation

/// Client certificates for the mutual-TLS tests, made with the same CA database as the server certificates:
///
/// - `client`: EC, subject O=Example Org, CN=alice, issued by the root CA, extendedKeyUsage clientAuth;
/// - `client-utf8`: subject CN=Zoë "Z" <z>, O=a,b (characters RFC 2253 escapes, and a non-ASCII one);
/// - `client-chained`: issued by the intermediate; its file holds the leaf and the intermediate;
/// - `client-expired`: valid only in January 2020;
/// - `client-other`: issued by `other-ca` (a root the servers do not trust);
/// - `other-ca.crt`: that root. The server leaves (`a.crt`, serverAuth only) serve as certificates not meant for
///   client authentication.
extension TestCertificates {
    static func generateClientCertificates(
        directory: String, run: ([String]) throws -> Void, write: (String, String) throws -> Void,
        ecKey: (String) throws -> Void
    ) throws {
        try ecKey("other-ca")
        try run([
            "req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", "ca_ext", "-key", "other-ca.key",
            "-subj", "/CN=LB Other CA", "-days", "3650", "-sha256", "-out", "other-ca.crt",
        ])
        try write(
            "client.ext",
            """
            [client]
            basicConstraints = CA:FALSE
            keyUsage = critical,digitalSignature
            extendedKeyUsage = clientAuth

            """)
        let thirtyDays = ["-days", "30"]
        let clients: [(name: String, subject: String, issuer: String, dates: [String])] = [
            ("client", "/O=Example Org/CN=alice", "ca", thirtyDays),
            ("client-utf8", "/O=a,b/CN=Zoë \"Z\" <z>", "ca", thirtyDays),
            ("client-chained", "/CN=bob", "intermediate", thirtyDays),
            ("client-expired", "/CN=carol", "ca", ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]),
            ("client-other", "/CN=mallory", "other-ca", thirtyDays),
        ]
        for client in clients {
            try ecKey(client.name)
            try run([
                "req", "-new", "-config", "openssl.cnf", "-utf8", "-key", client.name + ".key", "-subj", client.subject,
                "-out", client.name + ".csr",
            ])
            // -preserveDN keeps the organization, which the CA's policy (commonName only) would drop.
            try run(
                [
                    "ca", "-batch", "-config", "openssl.cnf", "-notext", "-preserveDN", "-utf8",
                    "-cert", client.issuer + ".crt", "-keyfile", client.issuer + ".key", "-extfile", "client.ext",
                    "-extensions", "client", "-in", client.name + ".csr", "-out", client.name + ".crt",
                ] + client.dates)
        }
        let leafPEM = try String(contentsOfFile: directory + "/client-chained.crt", encoding: .utf8)
        let intermediatePEM = try String(contentsOfFile: directory + "/intermediate.crt", encoding: .utf8)
        try write("client-chained.crt", leafPEM + intermediatePEM)
    }
}

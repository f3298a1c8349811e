import Foundation

/// The `openssl` commands behind `TestCertificates`. Every command gets an explicit config file, so the
/// system's openssl.cnf does not change what is made.
extension TestCertificates {
    static func generate(openssl: String, in directory: String) throws {
        func run(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: openssl)
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let message = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw Failure.commandFailed(
                    "openssl \(arguments.joined(separator: " ")) failed in \(directory): "
                        + String(decoding: message, as: UTF8.self))
            }
        }
        func write(_ name: String, _ text: String) throws {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        func ecKey(_ name: String) throws {
            try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name + ".key"])
        }

        try write("index.txt", "")
        try write("serial", "1000\n")
        try FileManager.default.createDirectory(atPath: directory + "/issued", withIntermediateDirectories: true)
        try write("openssl.cnf", config(directory: directory))

        // Root CA (self-signed) and an intermediate under it.
        try ecKey("ca")
        try run([
            "req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", "ca_ext", "-key", "ca.key",
            "-subj", "/CN=LB Test Root CA", "-days", "3650", "-sha256", "-out", "ca.crt",
        ])
        try ecKey("intermediate")
        try run([
            "req", "-new", "-config", "openssl.cnf", "-key", "intermediate.key", "-subj", "/CN=LB Test Intermediate",
            "-out", "intermediate.csr",
        ])
        try run([
            "ca", "-batch", "-config", "openssl.cnf", "-notext", "-cert", "ca.crt", "-keyfile", "ca.key",
            "-extensions", "intermediate_ext", "-days", "3650", "-in", "intermediate.csr", "-out", "intermediate.crt",
        ])

        // Leaves: name, SAN, key kind, issuer, validity.
        struct Leaf {
            let name, san: String
            let rsa: Bool
            let issuer: String
            let dates: [String]
        }
        let thirtyDays = ["-days", "30"]
        let leaves = [
            Leaf(name: "a", san: "a.test", rsa: false, issuer: "ca", dates: thirtyDays),
            Leaf(name: "wildcard", san: "*.b.test", rsa: false, issuer: "ca", dates: thirtyDays),
            Leaf(name: "rsa", san: "rsa.test", rsa: true, issuer: "ca", dates: thirtyDays),
            Leaf(name: "chained", san: "chain.test", rsa: false, issuer: "intermediate", dates: thirtyDays),
            Leaf(
                name: "expired", san: "expired.test", rsa: false, issuer: "ca",
                dates: ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]),
            Leaf(
                name: "future", san: "future.test", rsa: false, issuer: "ca",
                dates: ["-startdate", "20990101000000Z", "-enddate", "20991231000000Z"]),
        ]
        for leaf in leaves {
            if leaf.rsa {
                try run([
                    "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", leaf.name + ".key",
                ])
            } else {
                try ecKey(leaf.name)
            }
            try write(
                leaf.name + ".ext",
                """
                [leaf]
                basicConstraints = CA:FALSE
                keyUsage = critical,digitalSignature,keyEncipherment
                extendedKeyUsage = serverAuth
                subjectAltName = DNS:\(leaf.san)

                """)
            try run([
                "req", "-new", "-config", "openssl.cnf", "-key", leaf.name + ".key", "-subj", "/CN=\(leaf.san)", "-out",
                leaf.name + ".csr",
            ])
            try run(
                [
                    "ca", "-batch", "-config", "openssl.cnf", "-notext", "-cert", leaf.issuer + ".crt",
                    "-keyfile", leaf.issuer + ".key", "-extfile", leaf.name + ".ext", "-extensions", "leaf",
                    "-in", leaf.name + ".csr", "-out", leaf.name + ".crt",
                ] + leaf.dates)
        }
        // The chained leaf's file carries its intermediate, as a server's chain file does.
        let leafPEM = try String(contentsOfFile: directory + "/chained.crt", encoding: .utf8)
        let intermediatePEM = try String(contentsOfFile: directory + "/intermediate.crt", encoding: .utf8)
        try write("chained.crt", leafPEM + intermediatePEM)
        try generateClientCertificates(directory: directory, run: run, write: write, ecKey: ecKey)
    }

    private static func config(directory: String) -> String {
        """
        [req]
        distinguished_name = dn
        [dn]
        [ca_ext]
        basicConstraints = critical,CA:TRUE
        keyUsage = critical,keyCertSign,cRLSign
        subjectKeyIdentifier = hash
        [intermediate_ext]
        basicConstraints = critical,CA:TRUE,pathlen:0
        keyUsage = critical,keyCertSign,cRLSign
        subjectKeyIdentifier = hash
        authorityKeyIdentifier = keyid
        [ca]
        default_ca = test_ca
        [test_ca]
        database = \(directory)/index.txt
        new_certs_dir = \(directory)/issued
        serial = \(directory)/serial
        default_md = sha256
        policy = any_name
        unique_subject = no
        email_in_dn = no
        [any_name]
        commonName = supplied

        """
    }
}

// swift-tools-version:6.0
import PackageDescription

// libFuzzer harnesses, kept out of the root package so that its normal build and `swift test` never see fuzzer
// flags: ParserFuzz for the HTTP/1.1 parsers (`make fuzz`), TLSFuzz for the server side of the TLS engine
// (`make fuzz-tls`), H2Fuzz for the server side of HTTP/2 (`make fuzz-h2`). Built with
// `-Xswiftc -sanitize=fuzzer,address`, one product at a time.
let package = Package(
    name: "lb-fuzz",
    dependencies: [.package(name: "lb", path: "..")],
    targets: [
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "ParserFuzz",
            dependencies: ["CFuzzerDriver", .product(name: "LBHTTP", package: "lb")]
        ),
        // The OpenSSL client TLSFuzz's driven mode handshakes with; plain C behind a header without OpenSSL types.
        .target(name: "CTLSClient", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .executableTarget(
            name: "TLSFuzz",
            dependencies: ["CFuzzerDriver", "CTLSClient", .product(name: "LBTLS", package: "lb")]
        ),
        .executableTarget(
            name: "H2Fuzz",
            dependencies: [
                "CFuzzerDriver", .product(name: "LBH2", package: "lb"), .product(name: "LBHTTP", package: "lb"),
            ]
        ),
    ]
)

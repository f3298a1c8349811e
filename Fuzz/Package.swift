// swift-tools-version:6.0
import PackageDescription

// libFuzzer harness for the HTTP/1.1 parsers, kept out of the root package so that its normal build and
// `swift test` never see fuzzer flags. Built by `make fuzz` with `-Xswiftc -sanitize=fuzzer,address`.
let package = Package(
    name: "lb-fuzz",
    dependencies: [.package(name: "lb", path: "..")],
    targets: [
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "ParserFuzz",
            dependencies: ["CFuzzerDriver", .product(name: "LBHTTP", package: "lb")]
        ),
    ]
)

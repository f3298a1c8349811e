import LBHTTP

/// The libFuzzer target for the request and response parsers.
///
/// Input layout: byte 0 selects the run (bit 0: response; bits 1-2: the request method a response answers;
/// bit 3: small limits), byte 1 picks the split position, the rest is the message stream. The stream is fed
/// whole, in two pieces split there, and (when short) byte by byte; every feed must give identical events,
/// and every feed is checked against the parser's contract (see `Feeder`). Any mismatch traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let mode = data[0]
    let config = FuzzConfig(
        kind: mode & 1 == 0 ? .request : .response,
        method: [HTTPMethod.get, .head, .connect, .post][Int(mode >> 1) & 3],
        limits: mode & 8 == 0
            ? HTTPLimits()
            : HTTPLimits(maxRequestLine: 64, maxHeaderBytes: 256, maxHeaderCount: 6, maxBodyBytes: 100))
    let input = UnsafeRawBufferPointer(start: data + 2, count: size - 2)
    let split = Int(data[1]) * (input.count + 1) / 256

    let whole = Feeder(config).run([input])
    let halves = Feeder(config).run([
        UnsafeRawBufferPointer(rebasing: input[..<split]), UnsafeRawBufferPointer(rebasing: input[split...]),
    ])
    check(whole == halves, "whole vs split at \(split):\n\(whole)\n\(halves)")
    if input.count <= 512 {
        let bytes = (0..<input.count).map { UnsafeRawBufferPointer(rebasing: input[$0..<($0 + 1)]) }
        let bytewise = Feeder(config).run(bytes)
        check(whole == bytewise, "whole vs byte by byte:\n\(whole)\n\(bytewise)")
    }
    return 0
}

struct FuzzConfig {
    var kind: HTTPMessageKind
    var method: HTTPMethod
    var limits: HTTPLimits
}

/// Traps with a message, so that libFuzzer records the input as a crash.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

import LBH2
import LBHTTP

/// The libFuzzer target for the server side of HTTP/2 as lb runs it: an `H2Session` fed a client's bytes, with
/// a delegate (`FuzzConnection`) that does what `H2Connection` and `H2Stream` do short of sockets and backends.
///
/// Input layout: byte 0 the run's settings (see `RunConfig`), byte 1 the seed of each stream's behaviour (see
/// `StreamPlan`; its bit 7 also starts a graceful drain after the second piece), then as many cut bytes as byte 0
/// asks for, then the frames. The client's 24-byte preface and an
/// empty SETTINGS frame are put in front of the frames, so every input gets past the preface; the whole is fed in
/// pieces cut at the cut bytes (each byte b cuts at b/256 of its length), or byte by byte, so frame boundaries
/// fall anywhere. After each piece the harness does what the proxy does at the end of a loop turn (backends
/// deliver, held window is credited, streams whose backend request ended are retired) and takes everything
/// `send` produces, the way a socket that drains does. Any broken invariant traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    let config = RunConfig(input[0], seed: input[1])
    let cutBytes = min(config.cutCount, size - 2)
    let frames = input[(2 + cutBytes)...]
    var stream = clientPrefix
    stream.append(contentsOf: frames)

    var cuts: [Int]
    if config.bytewise && stream.count <= 600 {
        cuts = Array(1..<max(1, stream.count))
    } else {
        cuts = input[2..<(2 + cutBytes)].map { Int($0) * (stream.count + 1) / 256 }.sorted()
    }
    cuts.append(stream.count)

    let connection = FuzzConnection(config)
    stream.withUnsafeBytes { all in
        var start = 0
        for (turn, end) in cuts.enumerated() where end > start {
            if !connection.turn(UnsafeRawBufferPointer(rebasing: all[start..<end]), index: turn) { break }
            start = end
        }
    }
    connection.finish()
    return 0
}

/// The 24-byte connection preface and an empty SETTINGS frame: what every HTTP/2 client sends first.
let clientPrefix: [UInt8] = H2Session.preface + [0, 0, 0, 4, 0, 0, 0, 0, 0]

/// What byte 0 of the input chooses for one run.
///
/// Bits 0-1: SETTINGS_MAX_CONCURRENT_STREAMS of 1, 2, 4 or 100 (lb's default). Bit 2: small windows (16 KiB per
/// stream, 64 KiB for the connection) instead of lb's. Bit 3: small request limits (431 and 414 paths). Bit 4:
/// `send` is given 100 bytes at a time instead of 64 KiB, as a socket above its high-water mark would be. Bits
/// 5-7: how many cut bytes follow byte 1 (seven with a short input: fed byte by byte instead).
struct RunConfig {
    var settings: H2Session.Settings
    var limits: HTTPLimits
    var sendLimit: Int
    var cutCount: Int
    var bytewise: Bool
    var seed: UInt8

    init(_ b: UInt8, seed: UInt8) {
        settings = H2Session.Settings(maxConcurrentStreams: [1, 2, 4, 100][Int(b & 3)])
        if b & 4 != 0 {
            settings.streamWindow = 16384
            settings.connectionWindow = 65535
        }
        limits = b & 8 == 0
            ? HTTPLimits() : HTTPLimits(maxRequestLine: 64, maxHeaderBytes: 256, maxHeaderCount: 6)
        settings.maxHeaderListSize = limits.maxHeaderBytes
        sendLimit = b & 16 == 0 ? 65536 : 100
        cutCount = Int(b >> 5)
        bytewise = cutCount == 7
        self.seed = seed
    }

    /// What a stream may have delivered beyond what lb consumed of it: nghttp2 enforces the default window
    /// (65,535) until the client acknowledges lb's SETTINGS, the advertised one after.
    var streamAllowance: Int { max(settings.streamWindow, 65535) }
    var connectionAllowance: Int { max(settings.connectionWindow, 65535) }
}

/// Traps with a message, so that libFuzzer records the input as a crash.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

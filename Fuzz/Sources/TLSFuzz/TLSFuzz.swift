import LBTLS

/// The libFuzzer target for the server side of the TLS engine (`TLSSession`), in two modes chosen by bit 7
/// of byte 0. Any broken invariant traps (see `ServerUnderTest` and `DrivenRun`).
///
/// Raw mode (bit 7 clear): the input after a 4-byte header is what a client sent, fed to a fresh server session
/// in up to four chunks, with readPlaintext and takeCiphertext after each, as a connection does with socket
/// reads. Byte 0: bit 0 picks the context (`FuzzContexts.lenient` or `.strict`), bits 1-2 how many of bytes
/// 1-3 cut the stream (each byte b cuts at b/256 of its length), so record boundaries fall anywhere. This is
/// the ClientHello parser, SNI and ALPN selection, and every early failure. It cannot complete a handshake (the
/// server's random differs on every run), so the end of the run (write, shutdown) mostly checks that they do
/// nothing without a secure channel.
///
/// Driven mode (bit 7 set): a real client (OpenSSL, `CTLSClient`) handshakes with the server, and the rest of
/// the input is a script of deliveries, writes, KeyUpdates, close_notifys, bit flips and injected bytes between
/// the two; see `DrivenRun`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    if input[0] & 0x80 != 0 {
        DrivenRun(input).run()
    } else if size >= 4 {
        rawRun(input)
    }
    return 0
}

func rawRun(_ input: UnsafeBufferPointer<UInt8>) {
    let flags = input[0]
    let context = flags & 1 == 0 ? FuzzContexts.lenient : FuzzContexts.strict
    let stream = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: input[4...]))
    let cutCount = Int(flags >> 1) & 3
    let cuts = input[1..<(1 + cutCount)].map { Int($0) * (stream.count + 1) / 256 }.sorted()
    let server = ServerUnderTest(context)
    var start = 0
    for end in cuts + [stream.count] {
        server.receive(UnsafeRawBufferPointer(rebasing: stream[start..<end]))
        start = end
    }
    check(server.plaintext.isEmpty, "plaintext from a handshake no client can have finished")
    // A read with nothing new must change nothing.
    let failed = server.failure != nil
    server.read()
    check(failed == (server.failure != nil), "a read with no new input failed")
    if server.session.isHandshakeComplete && server.failure == nil {
        server.write(count: 100)
    } else {
        check(!(server.write(count: 10) == .done), "writePlaintext .done without a handshake")
    }
    server.shutdown()
    checkAccessors(server.session)
}

/// The control-plane accessors answer sensibly whatever state the session is in.
func checkAccessors(_ session: TLSSession) {
    if let index = session.certificateIndex { check(session.context.certificates.indices.contains(index), "index") }
    if session.isHandshakeComplete {
        check(session.protocolVersion != nil, "complete handshake without a version")
    } else {
        check(session.protocolVersion == nil && session.cipherName == nil, "version or cipher before the handshake")
    }
    if let alpn = session.negotiatedALPN { check(session.context.config.alpnProtocols.contains(alpn), "ALPN \(alpn)") }
    _ = session.serverName
    _ = session.isResumed
}

/// Traps with a message, so that libFuzzer records the input as a crash.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

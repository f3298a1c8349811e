import CTLSClient
import Glibc
import LBTLS

/// Driven mode: a real OpenSSL client (`CTLSClient`) and a server `TLSSession`, with the input deciding what
/// happens between them, so that the fuzzer reaches what lies behind a completed handshake.
///
/// Byte 0: bit 7 set (driven), bit 0 the context (lenient or strict, see `FuzzContexts`), bit 1 the client's
/// version (TLS 1.2 or 1.3 only), bits 2-3 the client's ALPN offer (none, http/1.1, h2, h2 and http/1.1), bit 4
/// resume (offer the session saved from a first handshake with the lenient context for fuzz.test). Byte 1, low
/// 3 bits: the client's server name (`serverNames`). Then 2-byte operations (`step`): the opcode's low 4 bits
/// pick the operation, its high 4 bits and the second byte are its arguments. After the script everything
/// pending is delivered both ways, the server writes, shuts down, and everything is delivered again.
///
/// Checked on every run, whatever the script: the server's plaintext is a prefix of what the client wrote, and
/// the client's is a prefix of what the server wrote (AEAD: no flipped or injected byte can forge a record),
/// plus every `ServerUnderTest` invariant. Checked when the script stayed "on script" (no flipped or injected
/// byte, no TLS 1.2 renegotiation attempt): the handshake succeeds exactly when the configuration says it must
/// (strict SNI refusals with `refusedServerName`, TLS 1.2 against the TLS 1.3-only context, ALPN without
/// overlap), the server presents the certificate SNI asks for and settles on the expected ALPN protocol, an
/// offered session for the same name resumes, and in the end both sides received everything the other wrote,
/// then its close_notify.
final class DrivenRun {
    static let serverNames: [String?] = [
        nil, "fuzz.test", "a.fuzz.test", "unknown.example", "FUZZ.Test", "X.Fuzz.TEST", "b.a.fuzz.test", "fuzz.test.",
    ]
    /// Index into `serverNames` -> certificate index (0 fuzz.test, 1 *.fuzz.test); nil: no certificate covers it.
    static let coveredBy: [Int?] = [nil, 0, 1, nil, 0, 1, nil, 0]

    private let script: UnsafeBufferPointer<UInt8>
    private var position = 0
    private let strictContext: Bool
    private let tls13: Bool
    private let alpn: Int32
    private let resume: Bool
    private let nameIndex: Int
    private let server: ServerUnderTest
    private let client: OpaquePointer
    /// Ciphertext taken from one side and not yet delivered to the other.
    private var toServer: [UInt8] = []
    private var toClient: [UInt8] = []
    private var clientWrote: [UInt8] = []
    private var clientRead: [UInt8] = []
    private var clientGotCloseNotify = false
    private var clientReadChecked = 0, serverReadChecked = 0
    private var serverShutDown = false
    /// A byte was flipped or injected, or the client tried to renegotiate: outcomes are no longer predictable.
    private var offScript = false

    init(_ input: UnsafeBufferPointer<UInt8>) {
        let flags = input[0]
        let tls13 = flags & 2 != 0, alpn = Int32(flags >> 2) & 3, resume = flags & 0x10 != 0
        let nameIndex = Int(input[1] & 7)
        if resume { _ = Self.sessionsSaved }
        let version = Int32(tls13 ? TLSFUZZ_TLS13 : TLSFUZZ_TLS12)
        let made: OpaquePointer? =
            if let name = Self.serverNames[nameIndex] {
                name.withCString { tlsfuzz_client_new($0, version, alpn, resume ? 1 : 0) }
            } else {
                tlsfuzz_client_new(nil, version, alpn, resume ? 1 : 0)
            }
        guard let made else { fatalError("tlsfuzz_client_new failed") }
        client = made
        strictContext = flags & 1 != 0
        self.tls13 = tls13
        self.alpn = alpn
        self.resume = resume
        self.nameIndex = nameIndex
        script = UnsafeBufferPointer(rebasing: input[2...])
        server = ServerUnderTest(strictContext ? FuzzContexts.strict : FuzzContexts.lenient)
    }

    deinit { tlsfuzz_client_free(client) }

    /// One handshake per version with the lenient context, for fuzz.test, whose sessions (tickets) later runs
    /// offer when they resume.
    static let sessionsSaved: Bool = {
        for flags: UInt8 in [0x84, 0x86] {  // driven, lenient, ALPN http/1.1; TLS 1.2, then 1.3
            let input: [UInt8] = [flags, 1]
            let saved = input.withUnsafeBufferPointer { buffer in
                let run = DrivenRun(buffer)
                run.run()
                return tlsfuzz_client_save_session(run.client, Int32(run.tls13 ? TLSFUZZ_TLS13 : TLSFUZZ_TLS12))
            }
            check(saved == 1, "no resumable session from a plain handshake (flags \(flags))")
        }
        return true
    }()

    func run() {
        pumpClient()
        while position + 2 <= script.count {
            let op = script[position], argument = script[position + 1]
            position += 2
            step(op, argument)
        }
        settle()
        let completed = server.session.isHandshakeComplete && server.failure == nil
        if completed && !serverShutDown {
            let result = server.write(count: 300)
            if !offScript { check(result == .done, "final writePlaintext: \(result)") }
        }
        server.shutdown()
        serverShutDown = true
        settle()
        if Self.verbose { trace(summary) }
        checkOutcome()
        checkAccessors(server.session)
    }

    /// TLSFUZZ_VERBOSE=1 traces every operation and server read, and sums up each driven run on stderr (to see
    /// what a reproducer does).
    static let verbose = getenv("TLSFUZZ_VERBOSE") != nil

    private var clientError: String { String(cString: tlsfuzz_client_error(client)) }

    private var summary: String {
        let s = server.session
        return "driven: \(strictContext ? "strict" : "lenient") TLS \(tls13 ? "1.3" : "1.2") "
            + "name \(Self.serverNames[nameIndex] ?? "none") alpn-offer \(alpn) resume-offer \(resume) "
            + "offScript \(offScript) | server: complete \(s.isHandshakeComplete) failure \(server.failure.map { "\($0)" } ?? "none") "
            + "closed \(server.closed) resumed \(s.isResumed) cert \(s.certificateIndex.map(String.init) ?? "-") "
            + "alpn \(s.negotiatedALPN ?? "-") read \(server.plaintext.count)/\(clientWrote.count) "
            + "wrote \(server.written.count) records \(server.records) | client: read \(clientRead.count) "
            + "close_notify \(clientGotCloseNotify) failed \(tlsfuzz_client_failed(client)) \(clientError)"
    }

    private func step(_ op: UInt8, _ argument: UInt8) {
        if Self.verbose { trace("op \(op & 0x0f) (\(op >> 4), \(argument))") }
        let high = Int(op >> 4)
        switch op & 0x0f {
        case 0: deliverToServer(argument == 0 ? Int.max : Int(argument))
        case 1: deliverToClient(argument == 0 ? Int.max : Int(argument))
        case 2: clientWrite(Int(argument) + 1 + high * 256)
        case 3: server.write(count: Int(argument) + 1 + high * 256)
        case 4:
            let queued = tlsfuzz_client_key_update(client, Int32(high & 1)) == 1
            if queued && !tls13 { offScript = true }  // TLS 1.2: a renegotiation, which the server refuses
            pumpClient()
        case 5:
            _ = tlsfuzz_client_shutdown(client)
            pumpClient()
        case 6:
            server.shutdown()
            serverShutDown = true
        case 7:
            collectClient()
            flip(&toServer, at: Int(argument), mask: UInt8(1) << (high & 7))
        case 8:
            toClient += server.drainOutput()
            flip(&toClient, at: Int(argument), mask: UInt8(1) << (high & 7))
        case 9:
            // Raw bytes from the script itself, straight into the server, between two client records or not.
            let count = min(Int(argument) % 64, script.count - position)
            if count > 0 { offScript = true }
            server.receive(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: script[position..<(position + count)])))
            position += count
            toClient += server.drainOutput()
        case 10:
            server.read()
            server.take()
        case 11:
            pumpClient()
        default:
            deliverToServer(.max)
            deliverToClient(.max)
        }
    }

    private func flip(_ bytes: inout [UInt8], at offset: Int, mask: UInt8) {
        guard !bytes.isEmpty else { return }
        bytes[offset % bytes.count] ^= mask
        offScript = true
    }

    /// Scratch space for the client's output and plaintext, one per run.
    private var scratch = [UInt8](repeating: 0, count: 16_384)

    private func collectClient() {
        while tlsfuzz_client_pending(client) > 0 {
            let n = tlsfuzz_client_take(client, &scratch, scratch.count)
            if n == 0 { break }
            toServer += scratch[..<n]
        }
    }

    /// Lets the client process what it was given (handshake, records), then collects what it sends.
    private func pumpClient() {
        // Every read that returns bytes consumes ciphertext the client holds, so this ends.
        while true {
            let n = tlsfuzz_client_pump(client, &scratch, scratch.count)
            if n > 0 {
                check(!clientGotCloseNotify, "client read data after the server's close_notify")
                clientRead += scratch[..<Int(n)]
                continue
            }
            if n == -1 { clientGotCloseNotify = true }
            break
        }
        collectClient()
        checkPrefix(clientRead, of: server.written, checked: &clientReadChecked, "the client read bytes the server never wrote")
    }

    /// `read` is a prefix of `written`; bytes before `checked` were compared already.
    private func checkPrefix(_ read: [UInt8], of written: [UInt8], checked: inout Int, _ message: String) {
        check(read.count <= written.count && read[checked...] == written[checked..<read.count], message)
        checked = read.count
    }

    private func clientWrite(_ count: Int) {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: (clientWrote.count + $0) &* 7 &+ 1) }
        if tlsfuzz_client_write(client, bytes, bytes.count) == 1 { clientWrote += bytes }
        collectClient()
    }

    private func deliverToServer(_ limit: Int) {
        collectClient()
        let n = min(limit, toServer.count)
        guard n > 0 else { return }
        toServer.withUnsafeBytes { server.receive(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        toServer.removeFirst(n)
        toClient += server.drainOutput()
        checkPrefix(server.plaintext, of: clientWrote, checked: &serverReadChecked, "the server read bytes the client never wrote")
    }

    private func deliverToClient(_ limit: Int) {
        toClient += server.drainOutput()
        let n = min(limit, toClient.count)
        guard n > 0 else { return }
        tlsfuzz_client_feed(client, toClient, n)
        toClient.removeFirst(n)
        pumpClient()
    }

    /// Delivers everything both ways until neither side has anything more to say.
    private func settle() {
        for _ in 0..<32 {
            collectClient()
            toClient += server.drainOutput()
            if toServer.isEmpty && toClient.isEmpty { return }
            deliverToServer(.max)
            deliverToClient(.max)
        }
        check(false, "the two sides kept talking for 32 rounds")
    }

    private func checkOutcome() {
        guard !offScript else { return }
        let session = server.session
        let covered = Self.coveredBy[nameIndex]
        let lenient = !strictContext
        let versionRefused = strictContext && !tls13
        let nameRefused = strictContext && covered == nil
        let serverALPN = lenient ? ["http/1.1"] : ["h2", "http/1.1"]
        let offered: [String] = [[], ["http/1.1"], ["h2"], ["h2", "http/1.1"]][Int(alpn)]
        let expectedALPN = serverALPN.first { offered.contains($0) }
        let alpnRefused = !offered.isEmpty && expectedALPN == nil
        let mustFail = versionRefused || nameRefused || alpnRefused
        let describe = "context \(lenient ? "lenient" : "strict"), TLS \(tls13 ? "1.3" : "1.2"), "
            + "name \(Self.serverNames[nameIndex] ?? "none"), ALPN \(offered), resume \(resume)"

        if mustFail {
            check(!session.isHandshakeComplete && server.failure != nil, "handshake not refused: \(describe)")
            check(tlsfuzz_client_handshake_done(client) == 0, "client finished a refused handshake: \(describe)")
            if let failure = server.failure, !versionRefused, nameRefused {
                check(failure.refusedServerName, "refusal not attributed to strict SNI (\(failure)): \(describe)")
            }
            if let failure = server.failure, !nameRefused {
                check(!failure.refusedServerName, "refusal attributed to strict SNI (\(failure)): \(describe)")
            }
            check(server.plaintext.isEmpty && clientRead.isEmpty, "data crossed a refused handshake")
            return
        }
        check(session.isHandshakeComplete, "handshake did not complete (\(server.failure.map { "\($0)" } ?? "no failure")): \(describe)")
        check(server.failure == nil, "server failed: \(server.failure!): \(describe)")
        check(tlsfuzz_client_handshake_done(client) == 1 && tlsfuzz_client_failed(client) == 0, "client failed (\(clientError)): \(describe)")
        check(session.protocolVersion == (tls13 ? .tls1_3 : .tls1_2), "version \(String(describing: session.protocolVersion))")
        // TLS 1.2 ties the server name to the session: OpenSSL resumes a fuzz.test session whatever name the
        // client sends now (RFC 6066 section 3 says it must not), and then reports the session's name and
        // certificate. TLS 1.3 ties it to the connection.
        let resumed12 = session.isResumed && !tls13
        let expectedCertificate = resumed12 ? 0 : covered ?? 0
        check(session.certificateIndex == expectedCertificate, "certificate \(String(describing: session.certificateIndex)): \(describe)")
        check(session.negotiatedALPN == expectedALPN, "ALPN \(String(describing: session.negotiatedALPN)): \(describe)")
        check(!session.isResumed || resume, "resumed a session nobody offered")
        check((tlsfuzz_client_resumed(client) == 1) == session.isResumed, "client and server disagree on resumption")
        if resume && lenient && nameIndex == 1 { check(session.isResumed, "the saved session did not resume: \(describe)") }
        let expectedName = resumed12 ? "fuzz.test" : Self.serverNames[nameIndex]
        check(session.serverName == expectedName, "serverName \(String(describing: session.serverName)): \(describe)")
        check(server.plaintext == clientWrote, "server read \(server.plaintext.count) of \(clientWrote.count) bytes")
        check(clientRead == server.written, "client read \(clientRead.count) of \(server.written.count) bytes")
        check(clientGotCloseNotify, "the client never saw the server's close_notify")
    }
}

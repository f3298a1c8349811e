import LBTLS
import LBUV

/// HTTPS on a client connection: a TLS session over a TCP socket, which the protocol code above sees as a
/// plain `ByteStream`. Ciphertext the socket reads is fed to the session and the plaintext goes up to the
/// handler; what the handler queues in `out` is encrypted when it flushes. The session lives on OpenSSL memory
/// buffers, so no TLS call touches the socket: after every read and every write, whatever ciphertext the
/// session produced (handshake messages, TLS 1.3 tickets written during reads, alerts) joins the socket's
/// queue in the same flush.
///
/// Ownership: the handler owns this stream, this stream owns its socket and is the socket's handler. The
/// socket keeps itself alive until its close callback, whose report passes through here exactly once.
final class TLSStream: ByteStream, ByteStreamHandler {
    let socket: HandledTCPStream
    let session: TLSSession
    /// Lifetime rule: the handler owns this stream and stays alive until `streamClosed()`, which clears this
    /// link first.
    unowned(unsafe) var handler: ByteStreamHandler?
    /// Plaintext the handler queued, encrypted by `flush()`.
    var out: [UInt8] = []
    /// Plaintext decrypted from one socket read, handed up whole (the handler keeps what it cannot use yet).
    private var plaintext: [UInt8] = []
    /// Counts a failed handshake or a broken record, for the worker's stats.
    private let onFailure: (TLSError) -> Void

    init(socket: HandledTCPStream, session: TLSSession, onFailure: @escaping (TLSError) -> Void) {
        self.socket = socket
        self.session = session
        self.onFailure = onFailure
        socket.handler = self
    }

    // MARK: ByteStream

    var writeQueueBytes: Int { out.count + socket.writeQueueBytes }
    var isEncrypted: Bool { true }
    var isClosing: Bool { socket.isClosing }

    func flush() {
        if !out.isEmpty && session.isHandshakeComplete {
            switch out.withUnsafeBytes({ session.writePlaintext($0) }) {
            case .done:
                out.removeAll(keepingCapacity: out.capacity <= 64 * 1024)
            case .wantMoreInput:
                break  // a renegotiation-like state cannot happen (renegotiation is off); keep the bytes
            case .failed(let error):
                onFailure(error)
                out.removeAll()
                socket.close()
                return
            }
        }
        sendCiphertext()
    }

    func startReading() { socket.startReading() }
    func stopReading() { socket.stopReading() }

    func closeAfterFlush() {
        flush()
        session.shutdown()  // close_notify, so the client knows the response was not truncated
        session.takeCiphertext(into: &socket.out)
        socket.closeAfterFlush()
    }

    /// Closes now, dropping queued plaintext, but still says close_notify when the session is established: a
    /// client that closed first is owed the reply (RFC 8446 §6.1), and OpenSSL keeps a session resumable only
    /// after a clean shutdown.
    func close() {
        guard !socket.isClosing else { return }
        guard session.isHandshakeComplete else {
            socket.close()
            return
        }
        out.removeAll()
        session.shutdown()
        session.takeCiphertext(into: &socket.out)
        socket.closeAfterFlush()
    }
    func abort() { socket.abort() }
    func peerAddress(into text: inout [UInt8]) { socket.peerAddress(into: &text) }

    // MARK: the socket's events

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        session.feed(ciphertext: bytes)
        let result = session.readPlaintext(into: &plaintext)
        sendCiphertext()
        switch result {
        case .progress:
            deliverPlaintext()
            // Output the handler queued during the handshake waits for it to complete.
            if !out.isEmpty && !socket.isClosing { flush() }
        case .wantMoreInput:
            break
        case .closed:
            // close_notify: what came before it is delivered, then it reads as the end of the client's input.
            deliverPlaintext()
            if !socket.isClosing { handler?.streamReadEnd(.eof) }
        case .failed(let error):
            onFailure(error)
            // The alert OpenSSL queued went out above; nothing more can be read or written securely.
            out.removeAll()
            socket.closeAfterFlush()
        }
    }

    func streamReadEnd(_ error: UVError) { handler?.streamReadEnd(error) }
    func streamDrained() { handler?.streamDrained() }

    func streamClosed() {
        let h = handler
        handler = nil
        h?.streamClosed()
    }

    // MARK: internals

    private func deliverPlaintext() {
        guard !plaintext.isEmpty, let handler else { return }
        plaintext.withUnsafeBytes { handler.streamRead($0) }
        plaintext.removeAll(keepingCapacity: plaintext.capacity <= 64 * 1024)
    }

    private func sendCiphertext() {
        if session.hasCiphertext { session.takeCiphertext(into: &socket.out) }
        socket.flush()
    }
}

import CLibUV
import LBHTTP
import LBTLS
import LBUV

/// TLS over a TCP socket, which the protocol code above sees as a plain `ByteStream`: HTTPS from a client
/// (`TLSSession`, accepted) or to a backend (`TLSClientSession`, connected with `connect(to:)`). Ciphertext the socket reads is fed to the session and the plaintext goes up to the
/// handler; what the handler queues in `out` is encrypted when it flushes. The session lives on OpenSSL memory
/// buffers, so no TLS call touches the socket: after every read and every write, whatever ciphertext the
/// session produced (handshake messages, TLS 1.3 tickets written during reads, alerts) joins the socket's
/// queue in the same flush.
///
/// Ownership: the handler owns this stream, this stream owns its socket and is the socket's handler. The
/// socket keeps itself alive until its close callback, whose report passes through here exactly once.
final class TLSStream<Session: TLSChannel>: ByteStream, ByteStreamHandler {
    let socket: HandledTCPStream
    let session: Session
    /// Lifetime rule: the handler owns this stream and stays alive until `streamClosed()`, which clears this
    /// link first.
    unowned(unsafe) var handler: ByteStreamHandler?
    /// Plaintext the handler queued, encrypted by `flush()`.
    var out: [UInt8] = []
    /// Plaintext decrypted from one socket read, handed up whole (the handler keeps what it cannot use yet).
    private var plaintext: [UInt8] = []
    /// Counts failed handshakes and broken records of accepted (client) connections. Nil on a connecting side
    /// (to a backend, or a health check), whose handler counts its own. The worker outlives its connections.
    private unowned(unsafe) let worker: Worker?
    /// Connecting, and `streamConnected` is not reported yet.
    private var awaitingHandshake = false
    /// Why the stream failed (a handshake refused, a certificate rejected, a broken record), for the handler.
    private(set) var failure: TLSError?
    /// The handler paused reading (it holds input it cannot use yet).
    private var readingPaused = false
    /// The client's close_notify (or a failure) ended the input; nothing more is read or delivered.
    private var inputEnded = false
    /// A close_notify that arrived while reading was paused: delivered when the handler reads again, as a TCP
    /// EOF would only be seen then.
    private var eofPending = false
    /// The field every request head of this connection is forwarded with (`TLSListenerContext.subjectField`):
    /// without a value until the first plaintext, then with the verified client certificate's subject when
    /// there is one. Nil when the listener has no `subject_header`.
    private(set) var ownedField: OwnedRequestField?
    /// The first plaintext has been delivered: the handshake is complete and `ownedField` final.
    private var handshakeSeen = false

    init(
        socket: HandledTCPStream, session: Session, worker: Worker?, subjectField: OwnedRequestField? = nil
    ) {
        self.socket = socket
        self.session = session
        self.worker = worker
        self.ownedField = subjectField
        socket.handler = self
    }

    /// Connects the socket, then runs the handshake; the handler hears `streamConnected` after both.
    func connect(to address: UnsafePointer<sockaddr>) {
        awaitingHandshake = true
        socket.connect(to: address)
    }

    // MARK: ByteStream

    var writeQueueBytes: Int { out.count + socket.writeQueueBytes }

    /// The plaintext and ciphertext queues' storage, and OpenSSL's record buffers (about 34 KB), once nothing
    /// is queued; a busy connection keeps them.
    func releaseIdleBuffers() -> Int {
        guard out.isEmpty, session.isHandshakeComplete else { return 0 }
        let released = out.capacity + socket.releaseIdleBuffers()
        out = []
        session.releaseBuffers()
        return released + 34 * 1024
    }
    var isEncrypted: Bool { true }
    var isClosing: Bool { socket.isClosing }

    func flush() {
        if socket.isClosing { return }
        if !out.isEmpty && session.isHandshakeComplete {
            switch out.withUnsafeBytes({ session.writePlaintext($0) }) {
            case .done:
                out.removeAll(keepingCapacity: out.capacity <= 64 * 1024)
            case .wantMoreInput:
                break  // a renegotiation-like state cannot happen (renegotiation is off); keep the bytes
            case .failed(let error):
                fail(error)
                out.removeAll()
                socket.close()
                return
            }
        }
        sendCiphertext()
    }

    func startReading() {
        readingPaused = false
        if eofPending {
            eofPending = false
            handler?.streamReadEnd(.eof)
            return
        }
        if !inputEnded { socket.startReading() }
    }

    func stopReading() {
        readingPaused = true
        socket.stopReading()
    }

    func closeAfterFlush() {
        flush()
        session.shutdown()  // close_notify, so the client knows the response was not truncated
        session.takeCiphertext(into: &socket.out)
        socket.closeAfterFlush()
    }

    /// Closes now, as a TCP close does. When nothing is left unsent it says close_notify first, in one
    /// non-blocking attempt: a client that closed first is owed the reply (RFC 8446 §6.1), and OpenSSL keeps a
    /// session resumable only after a clean shutdown. With data still queued the close is not clean, so no
    /// close_notify claims it is; and a peer that does not read cannot hold the close back.
    func close() {
        guard !socket.isClosing else { return }
        if session.isHandshakeComplete && out.isEmpty && socket.writeQueueBytes == 0 {
            session.shutdown()
            session.takeCiphertext(into: &socket.out)
            socket.flush()
        }
        socket.close()
    }
    func abort() { socket.abort() }

    // MARK: the socket's events

    func streamRead(_ bytes: UnsafeRawBufferPointer) {
        if inputEnded { return }
        session.feed(ciphertext: bytes)
        let result = session.readPlaintext(into: &plaintext)
        sendCiphertext()
        if awaitingHandshake && session.isHandshakeComplete {
            awaitingHandshake = false
            handler?.streamConnected(nil)
            if socket.isClosing { return }
            if !out.isEmpty { flush() }
        }
        switch result {
        case .progress:
            deliverPlaintext()
            // Output the handler queued during the handshake waits for it to complete.
            if !out.isEmpty && !socket.isClosing { flush() }
        case .wantMoreInput:
            break
        case .closed:
            // close_notify: what came before it is delivered, then it reads as the end of the client's input
            // (once the handler reads again, if it paused with input in hand).
            inputEnded = true
            socket.stopReading()
            deliverPlaintext()
            if socket.isClosing { return }
            if readingPaused { eofPending = true } else { handler?.streamReadEnd(.eof) }
        case .failed(let error):
            fail(error)
            // The alert OpenSSL queued went out above, as far as the socket took it at once; nothing more can be
            // read or written securely.
            inputEnded = true
            out.removeAll()
            if awaitingHandshake {
                awaitingHandshake = false
                handler?.streamConnected(UVError(UV_EPROTO.rawValue))
            }
            socket.close()
        }
    }

    func streamReadEnd(_ error: UVError) {
        if inputEnded { return }  // the TCP end after a close_notify: already reported
        inputEnded = true
        if awaitingHandshake {
            // The backend hung up during the handshake: the connection never came up.
            awaitingHandshake = false
            handler?.streamConnected(error)
            return
        }
        handler?.streamReadEnd(error)
    }

    func streamConnected(_ error: UVError?) {
        if let error {
            awaitingHandshake = false
            handler?.streamConnected(error)
            return
        }
        // TCP is up: the first read, with nothing fed, writes the ClientHello.
        let result = session.readPlaintext(into: &plaintext)
        sendCiphertext()
        if case .failed(let failure) = result {
            fail(failure)
            awaitingHandshake = false
            handler?.streamConnected(UVError(UV_EPROTO.rawValue))
            return
        }
        socket.startReading()
    }
    func streamDrained() { handler?.streamDrained() }
    func streamClosing() { handler?.streamClosing() }

    func streamClosed() {
        let h = handler
        handler = nil
        h?.streamClosed()
    }

    // MARK: internals

    /// Keeps the failure for the handler. On an accepted connection every failure counts once in
    /// `tlsFailures`, and a refused client certificate also under its reason; a connecting side's handler counts.
    private func fail(_ error: TLSError) {
        failure = error
        guard let worker else { return }
        worker.counters.tlsFailures &+= 1
        worker.counters.tlsFailureReasons[error.failureReason.rawValue] &+= 1
        if let refusal = error.clientCertificateRefusal {
            worker.counters.clientCertificateRefusals[refusal.rawValue] &+= 1
        }
    }

    private func deliverPlaintext() {
        guard !plaintext.isEmpty, let handler else { return }
        if !handshakeSeen { handshakeCompleted() }
        plaintext.withUnsafeBytes { handler.streamRead($0) }
        plaintext.removeAll(keepingCapacity: plaintext.capacity <= 64 * 1024)
    }

    /// Once per connection, before its first request is handed up (only a completed handshake yields
    /// plaintext): the subject field gets its value. The subject is read and the line built here, once; every
    /// request then shares them.
    private func handshakeCompleted() {
        handshakeSeen = true
        if let field = ownedField, let subject = session.clientCertificateSubject {
            ownedField = field.with(value: subject.utf8)
        }
    }

    private func sendCiphertext() {
        if session.hasCiphertext { session.takeCiphertext(into: &socket.out) }
        socket.flush()
    }
}

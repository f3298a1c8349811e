import CLibUV

/// The transport seam: a duplex byte stream as protocol code sees it. Bytes arrive through the stream's
/// `ByteStreamHandler`; bytes leave by appending to `out` and calling `flush()`, or by `send(_:)`. A plain TCP
/// socket is one (`HandledTCPStream`); a TLS session over a socket can be another, and the HTTP/1.1 connection
/// and the exchange above it do not change.
///
/// Contract: every method runs on the stream's loop thread; `close()` and `abort()` are idempotent and the
/// handler hears `streamClosed()` exactly once, after which the stream calls it no more.
public protocol ByteStream: AnyObject {
    /// Bytes waiting to be written; appended by the handler, sent by `flush()`.
    var out: [UInt8] { get set }
    /// Bytes queued and not yet taken by the kernel (back-pressure reads it).
    var writeQueueBytes: Int { get }
    var isClosing: Bool { get }
    func flush()
    /// Sends `bytes` after whatever is queued: handed to the kernel at once when nothing is queued or in
    /// flight ahead of them, so a body streamed through is not copied into `out` first; what the kernel does
    /// not take (or everything, when something is ahead) is appended to `out` for the next `flush()`.
    func send(_ bytes: UnsafeRawBufferPointer)
    func startReading()
    func stopReading()
    /// Closes once everything queued is written.
    func closeAfterFlush()
    func close()
    /// Closes so that the peer sees an error (a TCP reset), not an orderly end.
    func abort()
    /// True when the bytes are encrypted on the wire (TLS): the client reached us over HTTPS.
    var isEncrypted: Bool { get }
    /// The connection is idle: frees the write buffers it keeps between writes (when nothing is queued or
    /// in flight) and, over TLS, OpenSSL's record buffers. Returns about how many bytes it gave back; the next
    /// write allocates again.
    func releaseIdleBuffers() -> Int
}

extension ByteStream {
    public var isEncrypted: Bool { false }
    public func send(_ bytes: UnsafeRawBufferPointer) { out.append(contentsOf: bytes) }
}

/// What a `ByteStream` reports, on its loop thread.
public protocol ByteStreamHandler: AnyObject {
    func streamRead(_ bytes: UnsafeRawBufferPointer)
    /// The peer closed its sending side (`error.isEOF`) or reading failed.
    func streamReadEnd(_ error: UVError)
    /// A write completed and the queue is lower than before.
    func streamDrained()
    /// The stream is closed; its memory goes once this returns.
    func streamClosed()
    /// The stream began closing (whoever closed it): its socket is gone, `streamClosed()` follows at the end of
    /// the loop turn. Called once, before `streamClosed()`.
    func streamClosing()
    /// An outgoing stream is ready to carry bytes (nil), or could not be set up: the TCP connect failed, or (TLS)
    /// the handshake did; the handler closes it then. Never called for accepted streams.
    func streamConnected(_ error: UVError?)
}

extension ByteStreamHandler {
    public func streamConnected(_ error: UVError?) {}
    public func streamClosing() {}
}

extension TCPConnection: ByteStream {}


/// A TCP connection whose events go to a handler instead of a subclass.
public final class HandledTCPStream: TCPConnection {
    /// Lifetime rule: the handler owns this stream and stays alive until `streamClosed()`, which clears this
    /// link first; after that no event is delivered.
    public unowned(unsafe) var handler: ByteStreamHandler?

    public override func didRead(_ bytes: UnsafeRawBufferPointer) { handler?.streamRead(bytes) }

    public override func didReadEnd(_ error: UVError) {
        if let handler { handler.streamReadEnd(error) } else { close() }
    }

    public override func didDrain() { handler?.streamDrained() }

    public override func didBeginClosing() { handler?.streamClosing() }

    public override func didConnectResult(_ status: Int32) {
        handler?.streamConnected(status < 0 ? UVError(status) : nil)
    }

    public override func didClose() {
        let h = handler
        handler = nil
        h?.streamClosed()
    }
}

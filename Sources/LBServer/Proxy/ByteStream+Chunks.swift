import LBHTTP
import LBUV

// Chunk framing is HTTP's: the transport below only moves bytes.
extension ByteStream {
    /// Appends `bytes` as one chunk of a chunked body: size line, data, CRLF. Empty input writes nothing (an
    /// empty chunk would end the body).
    @inline(__always)
    func appendChunk(_ bytes: UnsafeRawBufferPointer) { HeadWriter.appendChunk(bytes, into: &out) }
}

import LBHTTP

// Chunk framing is HTTP's: the transport below only moves bytes.
extension ByteStream {
    /// Appends `bytes` as one chunk of a chunked body: size line, data, CRLF. Empty input writes nothing (an
    /// empty chunk would end the body).
    func appendChunk(_ bytes: UnsafeRawBufferPointer) {
        if bytes.isEmpty { return }
        HeadWriter.writeChunkHeader(bytes.count, into: &out)
        out.append(contentsOf: bytes)
        out.append(contentsOf: HeadWriter.chunkTrailer)
    }
}

/// Bodies for end-to-end checks.
enum TestData {
    /// `count` bytes of xorshift64 noise from a random seed (`count` a multiple of 8): reordered, repeated or
    /// dropped blocks change the body's digest, which a repeating pattern would not show.
    static func noise(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            var x = UInt64.random(in: 1...UInt64.max)
            for i in words.indices {
                x ^= x << 13
                x ^= x >> 7
                x ^= x << 17
                words[i] = x
            }
        }
        return bytes
    }
}

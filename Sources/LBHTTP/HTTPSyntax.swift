// Byte classes of RFC 9110 §5.6 / RFC 9112, as small inlinable predicates. ASCII only; no Foundation.

enum ASCII {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let comma: UInt8 = 0x2C
    static let semicolon: UInt8 = 0x3B
    static let equals: UInt8 = 0x3D
    static let dquote: UInt8 = 0x22
    static let backslash: UInt8 = 0x5C
    static let slash: UInt8 = 0x2F
}

@usableFromInline
enum HTTPSyntax {
    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    @inline(__always) static func isTchar(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// field-vchar / SP / HTAB: VCHAR and obs-text are allowed, CTLs other than HTAB and DEL are not.
    @inline(__always) static func isFieldValueByte(_ b: UInt8) -> Bool {
        (b >= 0x20 && b != 0x7F) || b == ASCII.htab
    }

    @inline(__always) static func isOWS(_ b: UInt8) -> Bool { b == ASCII.sp || b == ASCII.htab }

    // MARK: eight bytes at a time
    //
    // A head is scanned twice (line breaks as it accumulates, then each field value's bytes), and byte loops
    // were the largest part of parsing. These take a 64-bit word per step with the classic SWAR tests:
    // `(w - 0x01…) & ~w & 0x80…` is non-zero exactly when some byte of w is zero, and its lowest set bit marks
    // the first such byte (borrows only flag bytes above a real zero). XOR with a repeated byte turns "equals
    // that byte" into "is zero"; subtracting 0x20… instead finds bytes below 0x20.

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Non-zero iff some byte of `w` is zero; the lowest set bit is in the first zero byte.
    @inline(__always) private static func zeroBytes(_ w: UInt64) -> UInt64 { (w &- ones) & ~w & highs }

    /// The index of the first CR or LF in `p[from..<to]`, or `to` when there is none.
    @inline(__always)
    static func firstLineBreak(_ p: UnsafeRawBufferPointer, from: Int, to: Int) -> Int {
        var j = from
        if let base = p.baseAddress {
            while j + 8 <= to {
                let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: j, as: UInt64.self))
                let hits = zeroBytes(w ^ (ones &* UInt64(ASCII.cr))) | zeroBytes(w ^ (ones &* UInt64(ASCII.lf)))
                if hits != 0 { return j + hits.trailingZeroBitCount >> 3 }
                j += 8
            }
        }
        while j < to {
            let c = p[j]
            if c == ASCII.cr || c == ASCII.lf { return j }
            j += 1
        }
        return to
    }

    /// True when every byte of `p[range]` is a field-value byte (`isFieldValueByte`). A word with no byte
    /// below 0x20 and no DEL passes at once; a word the test flags (a CTL, DEL, or an HTAB, which is allowed)
    /// is checked byte by byte.
    static func allFieldValueBytes(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        var j = range.lowerBound
        let end = range.upperBound
        if let base = p.baseAddress {
            let raw = UnsafeRawPointer(base)
            while j + 8 <= end {
                let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: j, as: UInt64.self))
                let below20 = (w &- ones &* 0x20) & ~w & highs
                if below20 | zeroBytes(w ^ (ones &* 0x7F)) != 0 {
                    for k in j..<j + 8 where !isFieldValueByte(p[k]) { return false }
                }
                j += 8
            }
        }
        while j < end {
            if !isFieldValueByte(p[j]) { return false }
            j += 1
        }
        return true
    }

    /// Visible ASCII and obs-text (0x80-0xFF, e.g. raw UTF-8 that a client did not percent-encode): no CTL,
    /// SP or DEL. Forwarded unchanged; only SP and CRLF delimit the target, and those stay excluded.
    @inline(__always) static func isTargetByte(_ b: UInt8) -> Bool { b >= 0x21 && b != 0x7F }

    /// uri-host [":" port] of RFC 3986: unreserved / pct-encoded / sub-delims / ":" / "[" / "]" (IP literals).
    @inline(__always) static func isHostByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x2D, 0x2E, 0x5F, 0x7E, 0x25: return true  // - . _ ~ %
        case 0x21, 0x24, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x3B, 0x3D: return true  // sub-delims
        case 0x3A, 0x5B, 0x5D: return true  // : [ ]
        default: return false
        }
    }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b &- 0x30
        case 0x41...0x46: return b &- 0x41 &+ 10
        case 0x61...0x66: return b &- 0x61 &+ 10
        default: return nil
        }
    }

    @inlinable @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }

    /// Case-insensitive comparison of `p[range]` with a lowercase ASCII literal.
    static func equalsLowercase(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { lit in
            guard lit.count == range.count else { return false }
            var j = 0
            for i in range {
                if lower(p[i]) != lit[j] { return false }
                j += 1
            }
            return true
        }
    }

    /// Case-insensitive comparison of two ranges of the same buffer.
    static func equalsIgnoringCase(_ p: UnsafeBufferPointer<UInt8>, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        var j = b.lowerBound
        for i in a {
            if lower(p[i]) != lower(p[j]) { return false }
            j += 1
        }
        return true
    }

    /// `range` without leading and trailing OWS.
    static func trimOWS(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var lo = range.lowerBound
        var hi = range.upperBound
        while lo < hi && isOWS(p[lo]) { lo += 1 }
        while hi > lo && isOWS(p[hi - 1]) { hi -= 1 }
        return lo..<hi
    }

    /// Calls `body` with each non-empty, OWS-trimmed element of a comma-separated list (RFC 9110 §5.6.1:
    /// empty elements are ignored). Stops early and returns false when `body` does.
    @discardableResult
    static func forEachListElement(
        _ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Bool
    ) -> Bool {
        var start = range.lowerBound
        var i = range.lowerBound
        while i <= range.upperBound {
            if i == range.upperBound || p[i] == ASCII.comma {
                let element = trimOWS(p, start..<i)
                if !element.isEmpty && !body(element) { return false }
                start = i + 1
            }
            i += 1
        }
        return true
    }

    /// The coding name of one Transfer-Encoding list element, nil when the element is malformed.
    ///
    /// transfer-coding = token *( OWS ";" OWS transfer-parameter ) (RFC 9112 §7), read loosely: a parameter
    /// may be empty or a bare token ("chunked;custom_param;"), but a value must be a token (no quoted-string:
    /// a quoted "," or ";" would make the list split differently elsewhere). Parameters never affect framing.
    static func transferCodingName(_ p: UnsafeBufferPointer<UInt8>, _ element: Range<Int>) -> Range<Int>? {
        var i = element.lowerBound
        let end = element.upperBound
        func skipOWS() { while i < end && isOWS(p[i]) { i += 1 } }
        func skipToken() -> Bool {
            let start = i
            while i < end && isTchar(p[i]) { i += 1 }
            return i > start
        }
        guard skipToken() else { return nil }
        let name = element.lowerBound..<i
        while true {
            skipOWS()
            if i == end { return name }
            guard p[i] == ASCII.semicolon else { return nil }
            i += 1
            skipOWS()
            if i == end || p[i] == ASCII.semicolon { continue }  // an empty parameter
            guard skipToken() else { return nil }
            skipOWS()
            if i < end && p[i] == ASCII.equals {
                i += 1
                skipOWS()
                guard skipToken() else { return nil }
            }
        }
    }

    static func isToken(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        if range.isEmpty { return false }
        for i in range where !isTchar(p[i]) { return false }
        return true
    }
}

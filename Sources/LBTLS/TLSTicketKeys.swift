import COpenSSL
import Glibc

/// The keys a TLS listener encrypts session tickets with (RFC 5077 format: a 16-byte key name, an HMAC-SHA256
/// secret and an AES-256-CBC key, 80 bytes together), shared by every worker so a ticket resumes on any of them.
///
/// Two sources:
/// - `random()`: made once when the process starts and kept across certificate reloads, so a reload does not
///   throw away every client's session. Other lb processes cannot read these tickets, except a hot upgrade's
///   successor, which is handed them (`exportForSuccessor()`, `succeeding(_:)`).
/// - `load(file:)`: a file of at least three keys, one per line in base64 (`openssl rand -base64 80`), shared by
///   every lb instance that should resume each other's sessions. Tickets are encrypted with the second-to-last
///   key and any key in the file decrypts. Rotating means appending a fresh key and removing the first one on
///   every instance, then reloading: the new encryption key is one every instance already had as "next", so no
///   instance issues a ticket another cannot read, whatever the order the instances reload in. A ticket
///   encrypted with an older key is accepted and replaced with a fresh one.
///
/// Immutable after init; read by every worker during handshakes (`@unchecked Sendable`). The key bytes are
/// wiped when the object goes.
public final class TLSTicketKeys: @unchecked Sendable {
    public static let keyLength = 80
    public static let minimumKeysInFile = 3
    private static let nameLength = 16
    private static let hmacLength = 32
    private static let aesLength = 32

    /// `count` keys of 80 bytes, back to back.
    private let bytes: UnsafeMutableRawBufferPointer
    public let count: Int
    /// The key new tickets are encrypted with.
    private let encryptIndex: Int
    /// Where the keys came from, for messages: the file, or nil for random keys.
    public let file: String?

    private init(bytes: UnsafeMutableRawBufferPointer, count: Int, encryptIndex: Int, file: String?) {
        self.bytes = bytes
        self.count = count
        self.encryptIndex = encryptIndex
        self.file = file
    }

    deinit {
        OPENSSL_cleanse(bytes.baseAddress, bytes.count)
        bytes.deallocate()
    }

    /// One random key (new tickets and resumption within this process).
    public static func random() throws(TLSConfigError) -> TLSTicketKeys {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: keyLength, alignment: 16)
        guard RAND_bytes(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(keyLength)) == 1 else {
            bytes.deallocate()
            throw TLSConfigError(.libraryFailure, file: nil, "no randomness for TLS ticket keys: \(openSSLErrorText())")
        }
        return TLSTicketKeys(bytes: bytes, count: 1, encryptIndex: 0, file: nil)
    }

    /// How many keys of the previous process a hot upgrade's successor keeps (`succeeding`): a ticket stays
    /// resumable across this many upgrades even if its client does not come back in between.
    public static let keysCarriedOverUpgrades = 2

    /// Random keys for a hot upgrade's successor: a fresh key that seals new tickets, then the first
    /// `keysCarriedOverUpgrades` of `carried` (the previous process's keys, its sealing key first, from
    /// `exportForSuccessor()`), which only open tickets (a ticket they open is renewed under the fresh key). So
    /// tickets issued before the upgrade resume after it, and no key lives forever across a chain of upgrades.
    /// Keys of the wrong length are skipped. Throws only when there is no randomness.
    public static func succeeding(_ carried: [[UInt8]]) throws(TLSConfigError) -> TLSTicketKeys {
        let kept = carried.filter { $0.count == keyLength }.prefix(keysCarriedOverUpgrades)
        let count = 1 + kept.count
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count * keyLength, alignment: 16)
        guard RAND_bytes(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(keyLength)) == 1 else {
            bytes.deallocate()
            throw TLSConfigError(.libraryFailure, file: nil, "no randomness for TLS ticket keys: \(openSSLErrorText())")
        }
        for (i, key) in kept.enumerated() {
            key.withUnsafeBytes {
                bytes.baseAddress!.advanced(by: (i + 1) * keyLength).copyMemory(from: $0.baseAddress!, byteCount: keyLength)
            }
        }
        return TLSTicketKeys(bytes: bytes, count: count, encryptIndex: 0, file: nil)
    }

    /// Overwrites a copy of key material (from `exportForSuccessor()` or a hand-off) so it does not linger.
    public static func wipe(_ key: inout [UInt8]) {
        key.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

    /// The keys as a hot upgrade hands them to the successor: the sealing key first, then the others in order,
    /// 80 bytes each. Secret: the caller sends them only over the owner-only control socket, never logs them,
    /// and wipes its copies when done (`wipe(_:)`). Meant for random keys; a key file is read by both.
    public func exportForSuccessor() -> [[UInt8]] {
        let order = [encryptIndex] + (0..<count).filter { $0 != encryptIndex }
        return order.map { Array(UnsafeRawBufferPointer(start: key($0), count: Self.keyLength)) }
    }

    /// Reads a key file: at least three lines, each an 80-byte key in base64; blank lines and lines starting with
    /// `#` are ignored. Throws naming the file and the line.
    public static func load(file: String) throws(TLSConfigError) -> TLSTicketKeys {
        let bio = try LoadedCertificate.openFile(file, what: "ticket key")
        defer { BIO_free(bio) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = BIO_read(bio, &chunk, Int32(chunk.count))
            if n <= 0 { break }
            text.append(contentsOf: chunk[0..<Int(n)])
            if text.count > 1 << 20 {
                throw TLSConfigError(.invalidTicketKeys, file: file, "TLS ticket key file \(file) is over 1 MiB")
            }
        }
        defer { OPENSSL_cleanse(&text, text.count) }
        var keys: [[UInt8]] = []
        defer { for i in keys.indices { OPENSSL_cleanse(&keys[i], keys[i].count) } }
        for (number, rawLine) in text.split(separator: 10, omittingEmptySubsequences: false).enumerated() {
            let line = Array(rawLine.drop { $0 == 32 || $0 == 9 }.reversed().drop { $0 == 32 || $0 == 9 || $0 == 13 }.reversed())
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            guard let key = decodeBase64(line), key.count == keyLength else {
                throw TLSConfigError(
                    .invalidTicketKeys, file: file,
                    "TLS ticket key file \(file), line \(number + 1): expected \(keyLength) bytes in base64 "
                        + "(make one with: openssl rand -base64 \(keyLength))")
            }
            keys.append(key)
        }
        guard keys.count >= minimumKeysInFile else {
            throw TLSConfigError(
                .invalidTicketKeys, file: file,
                "TLS ticket key file \(file) holds \(keys.count) keys; it needs at least \(minimumKeysInFile) "
                    + "(previous, current, next) so instances can rotate without refusing each other's tickets")
        }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: keys.count * keyLength, alignment: 16)
        for (i, key) in keys.enumerated() {
            key.withUnsafeBytes { bytes.baseAddress!.advanced(by: i * keyLength).copyMemory(from: $0.baseAddress!, byteCount: keyLength) }
        }
        return TLSTicketKeys(bytes: bytes, count: keys.count, encryptIndex: keys.count - 2, file: file)
    }

    /// Standard base64 (with padding) to bytes; nil when it is not valid base64.
    private static func decodeBase64(_ text: [UInt8]) -> [UInt8]? {
        guard !text.isEmpty, text.count % 4 == 0 else { return nil }
        var out = [UInt8](repeating: 0, count: text.count / 4 * 3)
        let n = EVP_DecodeBlock(&out, text, Int32(text.count))
        guard n >= 0 else { return nil }
        // EVP_DecodeBlock counts the bytes the padding stands for; they are not data.
        let padding = text.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        return Array(out[0..<(Int(n) - padding)])
    }

    // MARK: during a handshake (OpenSSL's ticket callback)

    private func key(_ index: Int) -> UnsafeMutablePointer<UInt8> {
        bytes.baseAddress!.advanced(by: index * Self.keyLength).assumingMemoryBound(to: UInt8.self)
    }

    /// SSL_CTX_set_tlsext_ticket_key_evp_cb's contract. Encrypting (`encrypt`): fills `name` and `iv`, sets up
    /// the cipher and the MAC, returns 1 (or -1 when OpenSSL fails). Decrypting: finds the key named `name`;
    /// returns 0 when none is (the ticket is ignored: a full handshake), 2 when it is an older key or
    /// `alwaysRenew` (resume, and issue a fresh ticket), else 1; -1 when OpenSSL fails.
    ///
    /// `alwaysRenew` is for TLS 1.3, where OpenSSL's own key handling issues a new ticket on every resumption
    /// (tickets are meant for one use, RFC 8446 appendix C.4) but a callback must ask for it: without it a client
    /// keeps re-sending one ticket, which links its connections, and OpenSSL clients stop offering it once a
    /// connection ends without close_notify.
    func ticketCallback(
        name: UnsafeMutablePointer<UInt8>, iv: UnsafeMutablePointer<UInt8>, cipher: OpaquePointer,
        mac: OpaquePointer, encrypt: Bool, alwaysRenew: Bool
    ) -> Int32 {
        let index: Int
        if encrypt {
            index = encryptIndex
            name.update(from: key(index), count: Self.nameLength)
            guard RAND_bytes(iv, 16) == 1,
                EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nil, key(index) + Self.nameLength + Self.hmacLength, iv) == 1
            else { return -1 }
        } else {
            guard let found = (0..<count).first(where: { memcmp(key($0), name, Self.nameLength) == 0 }) else {
                return 0
            }
            index = found
            guard EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nil, key(index) + Self.nameLength + Self.hmacLength, iv) == 1
            else { return -1 }
        }
        guard setHMACKey(mac, key(index) + Self.nameLength) else { return -1 }
        if encrypt { return 1 }
        return index == encryptIndex && !alwaysRenew ? 1 : 2
    }

    /// HMAC-SHA256 with `secret` on OpenSSL's MAC context. The parameter names must outlive the call that builds
    /// the parameters (OSSL_PARAM keeps the pointer), so they are static strings, never temporaries.
    private func setHMACKey(_ mac: OpaquePointer, _ secret: UnsafeMutablePointer<UInt8>) -> Bool {
        var digest: (CChar, CChar, CChar, CChar, CChar, CChar, CChar) = (83, 72, 65, 50, 53, 54, 0)  // "SHA256"
        return withUnsafeMutableBytes(of: &digest) { digestBytes in
            var params = (
                OSSL_PARAM_construct_octet_string(Self.keyParameter, secret, Self.hmacLength),
                OSSL_PARAM_construct_utf8_string(
                    Self.digestParameter, digestBytes.baseAddress!.assumingMemoryBound(to: CChar.self), 0),
                OSSL_PARAM_construct_end()
            )
            return withUnsafeMutablePointer(to: &params) {
                $0.withMemoryRebound(to: OSSL_PARAM.self, capacity: 3) { EVP_MAC_CTX_set_params(mac, $0) == 1 }
            }
        }
    }

    private static var keyParameter: UnsafePointer<CChar> { cString("key") }
    private static var digestParameter: UnsafePointer<CChar> { cString("digest") }

    private static func cString(_ literal: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(literal.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

import Foundation

/// The messages lb exchanges with etcd v3's HTTP/JSON gateway (grpc-gateway), encoded and decoded with
/// Foundation on the control loop, never on the data path.
///
/// The gateway writes protobuf JSON: keys and values are base64, 64-bit integers (revisions) are strings, and
/// fields at their default value are left out (an event's `type` is absent for `PUT`, `kvs` for an empty range).
/// A watch answers with one chunked response that never ends, one JSON object per line (`{"result": …}` or, when
/// the stream fails, `{"error": …}`).
enum EtcdWire {
    struct KeyValue: Equatable {
        var key: String
        var value: [UInt8]
        var modRevision: Int64
    }

    /// What a range answers: the store's revision when it was read, and every key in the range.
    struct Range: Equatable {
        var revision: Int64
        var kvs: [KeyValue]
    }

    struct Event: Equatable {
        enum Kind: Equatable { case put, delete }
        var kind: Kind
        var kv: KeyValue
    }

    /// One line of a watch stream.
    enum WatchMessage: Equatable {
        /// The watch exists; `revision` is the store's revision when it was created.
        case created(revision: Int64)
        /// Changes, in revision order; `revision` is the store's revision when they were sent.
        case events([Event], revision: Int64)
        /// A progress notification: every change up to `revision` has been delivered.
        case progress(revision: Int64)
        /// The start revision was compacted away: the watch is over, read everything again.
        case compacted(compactRevision: Int64)
        /// The watch was cancelled for another reason (or the gateway reports an error).
        case canceled(reason: String)
    }

    struct DecodeError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: requests

    /// `POST /v3/kv/range` for every key under `prefix`; `countOnly` asks for the count and revision alone.
    static func rangeRequest(prefix: String, countOnly: Bool = false) -> [UInt8] {
        var object: [String: Any] = ["key": base64(prefix), "range_end": base64(rangeEnd(prefix))]
        if countOnly { object["count_only"] = true }
        return json(object)
    }

    /// `POST /v3/watch` for every key under `prefix` from `startRevision`, with the previous value of each
    /// changed key and progress notifications.
    static func watchRequest(prefix: String, startRevision: Int64) -> [UInt8] {
        json([
            "create_request": [
                "key": base64(prefix), "range_end": base64(rangeEnd(prefix)),
                "start_revision": String(startRevision), "prev_kv": true, "progress_notify": true,
            ] as [String: Any]
        ])
    }

    /// What a write compares before it happens: the key is absent, or its last change is `modRevision`.
    enum Precondition: Equatable {
        case absent
        case modRevision(Int64)
    }

    /// `POST /v3/kv/txn`: if `key` meets `precondition`, put `value` there (or delete the key when nil).
    static func txnRequest(key: String, precondition: Precondition, value: [UInt8]?) -> [UInt8] {
        let compare: [String: Any]
        switch precondition {
        case .absent:
            compare = ["key": base64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]
        case .modRevision(let revision):
            compare = ["key": base64(key), "target": "MOD", "result": "EQUAL", "mod_revision": String(revision)]
        }
        let operation: [String: Any] =
            value.map { ["request_put": ["key": base64(key), "value": base64($0)]] }
            ?? ["request_delete_range": ["key": base64(key)]]
        return json(["compare": [compare], "success": [operation], "failure": [] as [Any]])
    }

    /// A transaction's answer: whether the comparison held, and the store's revision after it (the write's
    /// revision when it succeeded).
    static func decodeTxn(_ body: [UInt8]) throws(DecodeError) -> (succeeded: Bool, revision: Int64) {
        let object = try decodeObject(body)
        return (object["succeeded"] as? Bool ?? false, try headerRevision(object))
    }

    /// `POST /v3/lease/grant` for a lease of `ttlSeconds`.
    static func leaseGrantRequest(ttlSeconds: Int) -> [UInt8] { json(["TTL": String(ttlSeconds)]) }

    /// `POST /v3/lease/keepalive` (one renewal: the gateway answers one line and ends the stream), and
    /// `POST /v3/lease/revoke`: both name the lease alone.
    static func leaseKeepAliveRequest(id: String) -> [UInt8] { json(["ID": id]) }

    /// `POST /v3/kv/put` of `value` at `key`, attached to lease `lease`.
    static func putRequest(key: String, value: [UInt8], lease: String) -> [UInt8] {
        json(["key": base64(key), "value": base64(value), "lease": lease])
    }

    /// A lease grant's id (a decimal string), or a keep-alive's remaining TTL (0: the lease is gone).
    static func decodeLease(_ body: [UInt8]) throws(DecodeError) -> (id: String, ttl: Int) {
        var object = try decodeObject(body)
        if let result = object["result"] as? [String: Any] { object = result }
        guard let id = object["ID"] as? String else { throw DecodeError("no lease ID") }
        return (id, Int(int64(object["TTL"]) ?? 0))
    }

    /// `POST /v3/auth/authenticate`.
    static func authenticateRequest(name: String, password: String) -> [UInt8] {
        json(["name": name, "password": password])
    }

    /// The first key after every key that starts with `prefix`: the prefix with its last byte below 0xff
    /// incremented (etcd's `clientv3.GetPrefixRangeEnd`).
    static func rangeEnd(_ prefix: String) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]  // every key
    }

    // MARK: responses

    static func decodeRange(_ body: [UInt8]) throws(DecodeError) -> Range {
        let object = try decodeObject(body)
        let revision = try headerRevision(object)
        let kvs = try (object["kvs"] as? [Any] ?? []).map { (item) throws(DecodeError) in try keyValue(item) }
        return Range(revision: revision, kvs: kvs)
    }

    /// The token of an authenticate answer.
    static func decodeToken(_ body: [UInt8]) throws(DecodeError) -> String {
        guard let token = try decodeObject(body)["token"] as? String, !token.isEmpty else {
            throw DecodeError("no token in the answer")
        }
        return token
    }

    /// The message of a non-200 gateway answer (`{"error": "…", "message": "…", "code": N}`), else the body.
    static func errorMessage(_ body: [UInt8]) -> String {
        if let object = try? decodeObject(body) {
            if let message = object["message"] as? String ?? object["error"] as? String { return message }
            if let error = object["error"] as? [String: Any], let message = error["message"] as? String {
                return message
            }
        }
        return String(decoding: body.prefix(200), as: UTF8.self)
    }

    static func decodeWatch(_ line: [UInt8]) throws(DecodeError) -> WatchMessage {
        let object = try decodeObject(line)
        if let error = object["error"] as? [String: Any] {
            return .canceled(reason: error["message"] as? String ?? "error")
        }
        guard let result = object["result"] as? [String: Any] else { throw DecodeError("neither result nor error") }
        if result["canceled"] as? Bool == true {
            if let compact = int64(result["compact_revision"]), compact > 0 {
                return .compacted(compactRevision: compact)
            }
            return .canceled(reason: result["cancel_reason"] as? String ?? "canceled")
        }
        let revision = try headerRevision(result)
        if result["created"] as? Bool == true { return .created(revision: revision) }
        let raw = result["events"] as? [Any] ?? []
        if raw.isEmpty { return .progress(revision: revision) }
        var events: [Event] = []
        for item in raw {
            guard let event = item as? [String: Any] else { throw DecodeError("an event is not an object") }
            let kind: Event.Kind
            switch event["type"] as? String ?? "PUT" {
            case "PUT": kind = .put
            case "DELETE": kind = .delete
            case let other: throw DecodeError("unknown event type \(other)")
            }
            events.append(Event(kind: kind, kv: try keyValue(event["kv"] as Any)))
        }
        return .events(events, revision: revision)
    }

    // MARK: helpers

    private static func json(_ object: [String: Any]) -> [UInt8] {
        // Only strings, booleans and nested dictionaries of them: serialization cannot fail.
        [UInt8]((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }

    private static func base64<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        Data(bytes).base64EncodedString()
    }

    private static func base64(_ text: String) -> String { base64(Array(text.utf8)) }

    private static func decodeObject(_ bytes: [UInt8]) throws(DecodeError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw DecodeError("not a JSON object: \(String(decoding: bytes.prefix(120), as: UTF8.self))")
        }
        return object
    }

    private static func headerRevision(_ object: [String: Any]) throws(DecodeError) -> Int64 {
        guard let header = object["header"] as? [String: Any], let revision = int64(header["revision"]) else {
            throw DecodeError("no header revision")
        }
        return revision
    }

    /// A protobuf int64: a JSON string, or (leniently) a number.
    private static func int64(_ value: Any?) -> Int64? {
        if let text = value as? String { return Int64(text) }
        if let number = value as? NSNumber { return number.int64Value }
        return nil
    }

    private static func keyValue(_ item: Any) throws(DecodeError) -> KeyValue {
        guard let kv = item as? [String: Any], let key64 = kv["key"] as? String,
            let keyData = Data(base64Encoded: key64), let key = String(data: keyData, encoding: .utf8)
        else { throw DecodeError("a key-value without a UTF-8 key") }
        var value: [UInt8] = []
        if let value64 = kv["value"] as? String {
            guard let data = Data(base64Encoded: value64) else { throw DecodeError("\(key): value is not base64") }
            value = [UInt8](data)
        }
        return KeyValue(key: key, value: value, modRevision: int64(kv["mod_revision"]) ?? 0)
    }
}

/// Splits a byte stream into lines (`\n`-terminated, a `\r` before it dropped), across reads of any size.
struct LineSplitter {
    private var pending: [UInt8] = []
    /// Longest line kept; a longer one is an error (a watch line carries one batch of server specs).
    let maxLine: Int

    init(maxLine: Int = 16 << 20) { self.maxLine = maxLine }

    /// Appends `bytes` and returns the lines they complete, in order. Returns nil when a line is too long.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [[UInt8]]? {
        var lines: [[UInt8]] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
                if !pending.isEmpty { lines.append(pending) }
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
                if pending.count > maxLine { return nil }
            }
        }
        return lines
    }
}

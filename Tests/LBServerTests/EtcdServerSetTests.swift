import Foundation
import LBCore
import XCTest

@testable import LBServer

/// The etcd source without I/O: the gateway's JSON, the watch stream's lines, and the server set's rules.
final class EtcdServerSetTests: XCTestCase {
    private let prefix = "/lb/c/servers/"

    private func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    private func kv(_ id: String, _ value: String, rev: Int64) -> EtcdWire.KeyValue {
        EtcdWire.KeyValue(key: prefix + id, value: Array(value.utf8), modRevision: rev)
    }

    private func server(_ id: String, port: Int, weight: Int = 1) -> String {
        #"{"id": "\#(id)", "host": "127.0.0.1", "port": \#(port), "weight": \#(weight)}"#
    }

    // MARK: wire

    func testARangeAnswerDecodesBase64KeysAndStringRevisions() throws {
        let body = #"""
            {"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"},"kvs":[{"key":"\#(b64(prefix + "a"))","create_revision":"2","mod_revision":"5","version":"1","value":"\#(b64("{}"))"}],"count":"1"}
            """#
        let range = try EtcdWire.decodeRange(Array(body.utf8))
        XCTAssertEqual(
            range,
            EtcdWire.Range(
                revision: 7, kvs: [EtcdWire.KeyValue(key: prefix + "a", value: Array("{}".utf8), modRevision: 5)]))
        // An empty range leaves `kvs` out.
        XCTAssertEqual(
            try EtcdWire.decodeRange(Array(#"{"header":{"revision":"3"}}"#.utf8)), EtcdWire.Range(revision: 3, kvs: []))
    }

    func testWatchLinesDecodeToCreatedEventsProgressAndCompaction() throws {
        func decode(_ text: String) throws -> EtcdWire.WatchMessage { try EtcdWire.decodeWatch(Array(text.utf8)) }
        XCTAssertEqual(try decode(#"{"result":{"header":{"revision":"2"},"created":true}}"#), .created(revision: 2))
        XCTAssertEqual(try decode(#"{"result":{"header":{"revision":"9"}}}"#), .progress(revision: 9))
        // A put has no `type` (protobuf JSON leaves the default out); a delete's kv has no value.
        let events = #"""
            {"result":{"header":{"revision":"4"},"events":[{"kv":{"key":"\#(b64(prefix + "a"))","mod_revision":"3","value":"\#(b64("x"))"}},{"type":"DELETE","kv":{"key":"\#(b64(prefix + "b"))","mod_revision":"4"},"prev_kv":{"key":"\#(b64(prefix + "b"))","mod_revision":"1","value":"\#(b64("y"))"}}]}}
            """#
        XCTAssertEqual(
            try decode(events),
            .events(
                [
                    EtcdWire.Event(
                        kind: .put, kv: EtcdWire.KeyValue(key: prefix + "a", value: Array("x".utf8), modRevision: 3)),
                    EtcdWire.Event(kind: .delete, kv: EtcdWire.KeyValue(key: prefix + "b", value: [], modRevision: 4)),
                ], revision: 4))
        XCTAssertEqual(
            try decode(#"{"result":{"header":{"revision":"3"},"canceled":true,"compact_revision":"3"}}"#),
            .compacted(compactRevision: 3))
        XCTAssertEqual(
            try decode(
                #"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
            ),
            .canceled(reason: "etcdserver: no leader"))
        XCTAssertThrowsError(try decode("not json"))
    }

    func testATransactionComparesCreationOrModRevisionAndPutsOrDeletes() throws {
        func object(_ bytes: [UInt8]) throws -> NSDictionary {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
        }
        let add = try object(EtcdWire.txnRequest(key: prefix + "a", precondition: .absent, value: Array("{}".utf8)))
        XCTAssertEqual(
            add,
            [
                "compare": [["key": b64(prefix + "a"), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]],
                "success": [["request_put": ["key": b64(prefix + "a"), "value": b64("{}")]]], "failure": [],
            ] as NSDictionary)
        let delete = try object(EtcdWire.txnRequest(key: prefix + "a", precondition: .modRevision(42), value: nil))
        XCTAssertEqual(
            delete,
            [
                "compare": [["key": b64(prefix + "a"), "target": "MOD", "result": "EQUAL", "mod_revision": "42"]],
                "success": [["request_delete_range": ["key": b64(prefix + "a")]]], "failure": [],
            ] as NSDictionary)
        // A failed comparison leaves `succeeded` out.
        XCTAssertEqual(try EtcdWire.decodeTxn(Array(#"{"header":{"revision":"9"}}"#.utf8)).succeeded, false)
        let won = try EtcdWire.decodeTxn(Array(#"{"header":{"revision":"10"},"succeeded":true,"responses":[]}"#.utf8))
        XCTAssertTrue(won.succeeded)
        XCTAssertEqual(won.revision, 10)
    }

    func testTheRangeEndCoversExactlyThePrefix() {
        XCTAssertEqual(EtcdWire.rangeEnd("/lb/c/servers/"), Array("/lb/c/servers0".utf8))
        XCTAssertEqual(EtcdWire.rangeEnd("a\u{7f}"), [0x61, 0x80])
    }

    func testLinesAreTheSameWhateverTheReadSizes() {
        let stream = Array("{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n{\"partial".utf8)
        var whole = LineSplitter()
        let all = stream.withUnsafeBytes { whole.feed($0) } ?? []
        XCTAssertEqual(all.map { String(decoding: $0, as: UTF8.self) }, [#"{"a":1}"#, #"{"b":2}"#, #"{"c":3}"#])
        var dripped = LineSplitter()
        var lines: [[UInt8]] = []
        for byte in stream { lines += [byte].withUnsafeBytes { dripped.feed($0) } ?? [] }
        XCTAssertEqual(lines, all)
        var small = LineSplitter(maxLine: 4)
        XCTAssertNil(Array("12345".utf8).withUnsafeBytes { small.feed($0) })
    }

    // MARK: the set

    func testAFullReadReportsOnlyTheDifference() {
        var set = EtcdServerSet(prefix: prefix)
        XCTAssertEqual(
            set.replace(
                with: [kv("a", server("a", port: 1), rev: 2), kv("b", server("b", port: 2), rev: 3)], revision: 3),
            EtcdServerSet.Change(added: ["a", "b"]))
        let change = set.replace(
            with: [
                kv("a", server("a", port: 1), rev: 2), kv("b", server("b", port: 2, weight: 3), rev: 5),
                kv("c", server("c", port: 3), rev: 6),
            ],
            revision: 8)
        XCTAssertEqual(change, EtcdServerSet.Change(added: ["c"], updated: ["b"]))
        XCTAssertEqual(set.revision, 8)
        XCTAssertEqual(set.servers.map(\.id), ["a", "b", "c"])
        XCTAssertEqual(set.entries["b"]?.modRevision, 5)
        XCTAssertEqual(
            set.replace(with: [kv("c", server("c", port: 3), rev: 6)], revision: 9),
            EtcdServerSet.Change(removed: ["a", "b"]))
    }

    func testEventsApplyInOrderAndKeysOutsideThePrefixAreIgnored() {
        var set = EtcdServerSet(prefix: prefix)
        _ = set.replace(with: [kv("a", server("a", port: 1), rev: 2)], revision: 2)
        let change = set.apply(
            [
                EtcdWire.Event(kind: .put, kv: kv("b", server("b", port: 2), rev: 3)),
                EtcdWire.Event(kind: .delete, kv: kv("a", "", rev: 4)),
                EtcdWire.Event(
                    kind: .put,
                    kv: EtcdWire.KeyValue(key: prefix + "x/y", value: Array(server("y", port: 9).utf8), modRevision: 4)),
            ], revision: 4)
        XCTAssertEqual(change, EtcdServerSet.Change(added: ["b"], removed: ["a"]))
        XCTAssertEqual(set.servers, [ServerSpec(id: "b", host: "127.0.0.1", port: 2)])
        XCTAssertEqual(set.revision, 4)
        set.advance(to: 10)
        XCTAssertEqual(set.revision, 10)
        set.advance(to: 5)
        XCTAssertEqual(set.revision, 10, "a revision never goes back")
    }

    func testABadValueIsNoServerRejectedWholeAndCounted() {
        var set = EtcdServerSet(prefix: prefix)
        _ = set.replace(with: [kv("a", server("a", port: 1), rev: 2)], revision: 2)
        let change = set.apply(
            [
                EtcdWire.Event(kind: .put, kv: kv("a", #"{"id": "a", "host": "127.0.0.1", "port": 70000}"#, rev: 3)),
                EtcdWire.Event(kind: .put, kv: kv("b", #"{"id": "other", "host": "127.0.0.1", "port": 2}"#, rev: 4)),
                EtcdWire.Event(kind: .put, kv: kv("c", "{not json", rev: 5)),
            ], revision: 5)
        XCTAssertEqual(change, EtcdServerSet.Change(removed: ["a"]))
        XCTAssertTrue(set.servers.isEmpty)
        XCTAssertEqual(set.rejectedTotal, 3)
        XCTAssertEqual(set.rejected.keys.sorted(), [prefix + "a", prefix + "b", prefix + "c"])
        XCTAssertTrue(set.rejected[prefix + "a"]?.hasPrefix("port:") ?? false, "\(set.rejected)")
        XCTAssertEqual(set.rejected[prefix + "b"], #"its id "other" is not the key's "b" (give "id": "b")"#)
        // A good value (or a delete) clears the rejection.
        _ = set.apply(
            [
                EtcdWire.Event(kind: .put, kv: kv("a", server("a", port: 1), rev: 6)),
                EtcdWire.Event(kind: .delete, kv: kv("c", "", rev: 7)),
            ], revision: 7)
        XCTAssertEqual(set.servers.map(\.id), ["a"])
        XCTAssertEqual(set.rejected.keys.sorted(), [prefix + "b"])
    }

    func testRetriesGoAroundTheEndpointsThenBackOffWithJitter() {
        for _ in 0..<50 {
            XCTAssertLessThanOrEqual(EtcdSource.retryDelay(consecutiveFailures: 1, endpoints: 3), 20)
            XCTAssertLessThanOrEqual(EtcdSource.retryDelay(consecutiveFailures: 2, endpoints: 3), 20)
            XCTAssertTrue((50...100).contains(EtcdSource.retryDelay(consecutiveFailures: 3, endpoints: 3)))
            XCTAssertTrue((100...200).contains(EtcdSource.retryDelay(consecutiveFailures: 6, endpoints: 3)))
            XCTAssertTrue((1_000...2_000).contains(EtcdSource.retryDelay(consecutiveFailures: 300, endpoints: 3)))
        }
    }
}

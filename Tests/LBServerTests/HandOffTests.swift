import Foundation
import LBCore
import LBUV
import XCTest

@testable import LBServer

/// The sans-I/O parts of hot upgrades: the control socket's framing and requests, the hand-off message, how
/// inherited sockets are spread over workers, and when a successor may start accepting.
final class HandOffTests: XCTestCase {
    func testLinesAreSplitOnNewlinesWhateverTheChunks() throws {
        let text = Array("{\"request\":\"status\"}\r\n{\"a\":1}\n{\"b\"".utf8)
        for chunkSize in [1, 2, 7, text.count] {
            var buffer = ControlLineBuffer()
            var lines: [String] = []
            var i = 0
            while i < text.count {
                buffer.append(text[i..<min(i + chunkSize, text.count)])
                i += chunkSize
                while let line = try buffer.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
            }
            XCTAssertEqual(lines, [#"{"request":"status"}"#, #"{"a":1}"#], "chunks of \(chunkSize)")
        }
    }

    func testAnOverlongLineIsAnError() {
        var buffer = ControlLineBuffer()
        buffer.append([UInt8](repeating: 65, count: ControlMessage.maxLineBytes + 1)[...])
        XCTAssertThrowsError(try buffer.nextLine())
    }

    func testRequestsAreParsedAndBadOnesNamed() throws {
        XCTAssertEqual(try ControlRequest(["request": "status"]), .status)
        XCTAssertEqual(try ControlRequest(["request": "abort", "error": "x"]), .abort(error: "x"))
        XCTAssertEqual(
            try ControlRequest(["request": "upgrade", "binary": "/usr/bin/lb-server", "arguments": ["--takeover"],
                                "timeout_ms": 5000]),
            .upgrade(binary: "/usr/bin/lb-server", arguments: ["--takeover"], directory: nil, timeoutMs: 5000))
        XCTAssertThrowsError(try ControlRequest(["request": "upgrade", "binary": "lb-server", "arguments": []])) {
            XCTAssertTrue("\($0)".contains("absolute path"))
        }
        XCTAssertThrowsError(try ControlRequest(["request": "reboot"])) { XCTAssertTrue("\($0)".contains("known:")) }
        XCTAssertThrowsError(try ControlRequest([:]))
        XCTAssertThrowsError(try ControlMessage.decode(Array("[1]".utf8)))
    }

    func testTheHandOffMessageRoundTripsWithItsDescriptorsInOrder() throws {
        let sent = HandOff(
            pid: 42, version: "1.0", workers: 2,
            listeners: [
                .init(configured: "127.0.0.1:0", bound: "127.0.0.1:8080", tls: false, descriptors: [10, 11]),
                .init(configured: ":8443", bound: "0.0.0.0:8443", tls: true, descriptors: [12, 13]),
            ],
            admin: .init(configured: "127.0.0.1:8081", bound: "127.0.0.1:8081", tls: false, descriptors: [14]),
            servers: [.init(spec: ServerSpec(id: "a", host: "10.0.0.1", port: 80, weight: 3), draining: true, up: false)])
        let (object, descriptors) = sent.message()
        XCTAssertEqual(descriptors, [10, 11, 12, 13, 14])
        let json = ControlMessage.encode(object)
        let back = try HandOff(message: ControlMessage.decode(Array(json.dropLast())), descriptors: descriptors)
        XCTAssertEqual(back.pid, 42)
        XCTAssertEqual(back.listeners.map(\.descriptors), [[10, 11], [12, 13]])
        XCTAssertEqual(back.listeners.map(\.tls), [false, true])
        XCTAssertEqual(back.admin?.descriptors, [14])
        XCTAssertEqual(back.servers.first?.spec, ServerSpec(id: "a", host: "10.0.0.1", port: 80, weight: 3))
        XCTAssertEqual(back.servers.first?.draining, true)
        XCTAssertEqual(back.servers.first?.up, false)
    }

    func testTicketKeysTravelPerListenerAndAnOlderMessageHasNone() throws {
        let key = [UInt8](repeating: 7, count: 80)
        var sent = HandOff(
            pid: 1, version: "1", workers: 1,
            listeners: [
                .init(configured: "a:1", bound: "a:1", tls: false, descriptors: [-1]),
                .init(configured: "a:2", bound: "a:2", tls: true, descriptors: [-1], ticketKeys: [key, key]),
            ], admin: nil, servers: [])
        let line = ControlMessage.encode(sent.message().object)
        let back = try HandOff(message: ControlMessage.decode(Array(line.dropLast())), descriptors: [-1, -1])
        XCTAssertEqual(back.listeners.map(\.ticketKeys), [[], [key, key]])
        // The keys sort after the listeners, so a message quoting the start of the line never shows them.
        let text = String(decoding: line, as: UTF8.self)
        XCTAssertLessThan(
            try XCTUnwrap(text.range(of: "\"listeners\"")).lowerBound, try XCTUnwrap(text.range(of: "tls_ticket_keys")).lowerBound)
        // From a process that sends no keys (an older lb-server, or no TLS listener): none, and no field at all.
        sent.listeners[1].ticketKeys = []
        XCTAssertNil(sent.message().object["tls_ticket_keys"])
        let older = try HandOff(message: sent.message().object, descriptors: [-1, -1])
        XCTAssertEqual(older.listeners.map(\.ticketKeys), [[], []])
    }

    func testAMessageAnnouncingMoreSocketsThanArrivedIsRefused() throws {
        let sent = HandOff(
            pid: 1, version: "1", workers: 1,
            listeners: [.init(configured: "a:1", bound: "a:1", tls: false, descriptors: [-1, -1])], admin: nil,
            servers: [])
        XCTAssertThrowsError(try HandOff(message: sent.message().object, descriptors: [-1])) {
            XCTAssertTrue("\($0)".contains("more were announced"), "\($0)")
        }
    }

    func testEverySocketIsServedWhateverTheWorkerCount() {
        // More sockets than workers: each worker takes every n-th one, none is left without a worker.
        XCTAssertEqual(HandOff.distribute([10, 11, 12, 13], workers: 2), [[10, 12], [11, 13]])
        XCTAssertEqual(HandOff.distribute([10, 11, 12], workers: 1), [[10, 11, 12]])
        // Fewer: the extra workers share a duplicate.
        let shared = HandOff.distribute([dup(0)], workers: 3)
        XCTAssertEqual(shared.map(\.count), [1, 1, 1])
        XCTAssertEqual(Set(shared.flatMap { $0 }).count, 3, "three descriptors")
        for fd in shared.flatMap({ $0 }) { close(fd) }
    }

    func testListenersMatchByConfiguredAddressThenByBoundAddress() throws {
        let groups: [HandOff.ListenerGroup] = [
            .init(configured: "127.0.0.1:0", bound: "127.0.0.1:40000", tls: false, descriptors: []),
            .init(configured: "0.0.0.0:8443", bound: "0.0.0.0:8443", tls: true, descriptors: []),
        ]
        let zero = try SocketAddress.resolve(host: "127.0.0.1", port: 0)
        XCTAssertEqual(HandOff.match(groups, configured: HostPort(host: "127.0.0.1", port: 0), resolved: zero), 0)
        let tls = try SocketAddress.resolve(host: "0.0.0.0", port: 8443)
        XCTAssertEqual(HandOff.match(groups, configured: HostPort(host: "", port: 8443), resolved: tls), 1)
        let other = try SocketAddress.resolve(host: "127.0.0.1", port: 9000)
        XCTAssertNil(HandOff.match(groups, configured: HostPort(host: "127.0.0.1", port: 9000), resolved: other))
    }

    func testASuccessorAcceptsOnceEveryServerWasCheckedAndOnePassed() {
        typealias S = TakeoverReadiness.Server
        let evaluate = { (servers: [S], up: Int, elapsed: UInt64) in
            TakeoverReadiness.evaluate(servers: servers, previousUp: up, elapsedMs: elapsed, timeoutMs: 1000)
        }
        XCTAssertEqual(evaluate([], 0, 0), .ready, "no active checks: at once")
        XCTAssertEqual(evaluate([S(checked: true, passed: true), S(checked: false, passed: false)], 2, 10), .wait)
        XCTAssertEqual(evaluate([S(checked: true, passed: true), S(checked: true, passed: false)], 2, 10), .ready)
        XCTAssertEqual(evaluate([S(checked: true, passed: false)], 1, 10), .wait, "failing, but there is time")
        XCTAssertEqual(evaluate([S(checked: true, passed: false)], 0, 10), .ready, "down before the upgrade too")
        XCTAssertEqual(evaluate([S(checked: true, passed: true), S(checked: false, passed: false)], 2, 1000), .ready)
        guard case .fail(let reason) = evaluate([S(checked: true, passed: false)], 1, 1000) else {
            return XCTFail("no server passed by the deadline")
        }
        XCTAssertTrue(reason.contains("no server passed its first health check"), reason)
    }
}

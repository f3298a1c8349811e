import Foundation
import XCTest

/// The access log through the real proxy: one line per request with the fields the README documents, in
/// both formats, all written by the time a graceful stop completes.
final class AccessLogTests: IntegrationTestCase {
    private func run(format: String, requests: [String]) throws -> (lines: [String], backend: String) {
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let log = NSTemporaryDirectory() + "lb-access-\(UUID().uuidString).log"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: log) }
        let lb = try startProxy(backends: [backend.address], settings: ["access_log": ["format": format, "path": log]])
        let c = try RawHTTPConnection(port: lb.proxyPort)
        for path in requests {
            try c.send("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try c.readResponse()
        }
        c.close()
        XCTAssertEqual(lb.process.terminate(), 0, lb.process.log)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        return (text.split(separator: "\n").map(String.init), backend.address)
    }

    func testJSONLinesCarryEveryField() throws {
        let (lines, backend) = try run(format: "json", requests: ["/a?x=\"q\"", "/status/503", "/bytes?size=1234"])
        XCTAssertEqual(lines.count, 3, lines.joined(separator: "\n"))
        let objects = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(objects.map { $0["path"] as? String }, ["/a?x=\"q\"", "/status/503", "/bytes?size=1234"])
        XCTAssertEqual(objects.map { $0["status"] as? Int }, [200, 503, 200])
        XCTAssertEqual(objects[2]["bytes"] as? Int, 1234)
        for o in objects {
            XCTAssertEqual(o["method"] as? String, "GET")
            XCTAssertEqual(o["client"] as? String, "127.0.0.1")
            XCTAssertEqual(o["server"] as? String, backend)
            XCTAssertEqual(o["retries"] as? Int, 0)
            XCTAssertEqual(o["cause"] as? String, "ok")
            XCTAssertNotNil(o["total_ms"] as? Double)
            XCTAssertNotNil(o["response_ms"] as? Double)
            XCTAssertNotNil(o["time"] as? String)
        }
        XCTAssertNotNil(objects[0]["connect_ms"] as? Double, "the first request opened the upstream connection")
        XCTAssertTrue(objects[1]["connect_ms"] is NSNull, "later ones reused it")
    }

    func testCommonLinesCarryEveryField() throws {
        let (lines, backend) = try run(format: "common", requests: ["/one", "/bytes?size=10"])
        XCTAssertEqual(lines.count, 2, lines.joined(separator: "\n"))
        let pattern = #"^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET (\S+) HTTP/1\.1" (\d{3}) (\d+) server=(\S+) retries=0 connect_ms=\S+ response_ms=\d+\.\d{3} total_ms=\d+\.\d{3} cause=ok$"#
        let regex = try NSRegularExpression(pattern: pattern)
        var paths: [String] = []
        for line in lines {
            let m = try XCTUnwrap(regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)), line)
            let group = { (i: Int) in String(line[Range(m.range(at: i), in: line)!]) }
            paths.append(group(1))
            XCTAssertEqual(group(2), "200")
            XCTAssertEqual(group(4), backend)
        }
        XCTAssertEqual(paths, ["/one", "/bytes?size=10"])
        XCTAssertTrue(lines[1].contains("\" 200 10 "), lines[1])
    }

    /// A connection keeps an IPv4 client's address inside itself and a longer one apart: both must reach the
    /// access log and X-Forwarded-For whole. A dual-stack listener sees an IPv4 client as `::ffff:127.0.0.1`
    /// (16 bytes), the same client on an IPv4 listener as `127.0.0.1`.
    func testLongAndShortClientAddressesAreLoggedAndForwardedWhole() throws {
        // A host without IPv6 cannot bind the dual-stack listener this needs.
        let probe = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        var any = sockaddr_in6()
        any.sin6_family = sa_family_t(AF_INET6)
        let bound = probe >= 0 && withUnsafePointer(to: &any) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
        if probe >= 0 { close(probe) }
        if !bound { throw XCTSkip("this host cannot bind an IPv6 socket to [::]") }
        let spy = try SpyBackend()
        let log = NSTemporaryDirectory() + "lb-access-\(UUID().uuidString).log"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: log) }
        let config = try writeConfigFile([
            "listeners": [["address": "127.0.0.1:0"], ["address": "[::]:0"]],
            "access_log": ["format": "json", "path": log],
        ])
        let lb = try LBBinaries.startServer(backends: [spy.address], configFile: config, listen: nil)
        let dualPort = try XCTUnwrap(
            lb.process.log.split(separator: "\n").compactMap { line -> Int? in
                guard let r = line.range(of: "listening on [::]:") else { return nil }
                return Int(line[r.upperBound...].prefix { $0.isNumber })
            }.first, lb.process.log)
        for (port, path) in [(lb.proxyPort, "/v4"), (dualPort, "/mapped"), (lb.proxyPort, "/v4-again")] {
            let c = try RawHTTPConnection(port: port)
            for _ in 0..<2 {
                try c.send("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
                XCTAssertEqual(try c.readResponse().status, 200)
            }
            c.close()
        }
        XCTAssertEqual(lb.process.terminate(), 0, lb.process.log)
        let forwarded = spy.requests.map { request -> [String] in
            let text = String(decoding: request, as: UTF8.self)
            let path = String(text.split(separator: " ")[1])
            let xff = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-forwarded-for:") }
            return [path, xff.map { String($0.dropFirst(16)).trimmingCharacters(in: .whitespaces) } ?? "none"]
        }
        XCTAssertEqual(forwarded.sorted { $0[0] < $1[0] }, [
            ["/mapped", "::ffff:127.0.0.1"], ["/mapped", "::ffff:127.0.0.1"],
            ["/v4", "127.0.0.1"], ["/v4", "127.0.0.1"], ["/v4-again", "127.0.0.1"], ["/v4-again", "127.0.0.1"],
        ])
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        let logged = try lines.map { line -> [String] in
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return [o["path"] as? String ?? "?", o["client"] as? String ?? "?"]
        }
        XCTAssertEqual(logged.sorted { $0[0] < $1[0] }, forwarded.sorted { $0[0] < $1[0] })
    }

    /// Requests rejected before their head was complete get a line too: status and cause, no request line.
    func testRequestsRejectedBeforeACompleteHeadAreLogged() throws {
        for format in ["json", "common"] {
            let backend = try LBBinaries.startDemoBackend(name: "b1")
            let log = NSTemporaryDirectory() + "lb-access-\(UUID().uuidString).log"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: log) }
            let lb = try startProxy(
                backends: [backend.address], settings: ["access_log": ["format": format, "path": log]])
            let bad = try RawHTTPConnection(port: lb.proxyPort)
            try bad.send("GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(try bad.readResponse().status, 200)
            try bad.send("GET /x HTTP/1.1\r\nHost: a\r\nBad Header: v\r\n\r\n")
            XCTAssertEqual(try bad.readResponse().status, 400)
            let long = try RawHTTPConnection(port: lb.proxyPort)
            try long.send("GET /" + String(repeating: "u", count: 70_000) + " HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(try long.readResponse().status, 414)
            XCTAssertEqual(lb.process.terminate(), 0, lb.process.log)
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.count, 3, "\(format): \(lines)")
            guard lines.count == 3 else { continue }
            // With several workers each writes its own lines, so the order across connections is not fixed.
            if format == "json" {
                let objects = try lines.map {
                    try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
                }
                XCTAssertEqual(objects.compactMap { $0["status"] as? Int }.sorted(), [200, 400, 414])
                for o in objects where o["status"] as? Int != 200 {
                    XCTAssertTrue(o["method"] is NSNull, "\(o)")
                    XCTAssertTrue(o["path"] is NSNull, "\(o)")
                    XCTAssertTrue(o["server"] is NSNull, "\(o)")
                    XCTAssertEqual(o["cause"] as? String, "proxy")
                    XCTAssertEqual(o["client"] as? String, "127.0.0.1")
                    XCTAssertNotNil(o["total_ms"] as? Double)
                }
            } else {
                let ok = lines.filter { $0.contains("\"GET /ok HTTP/1.1\" 200 ") }
                let rejected400 = lines.filter { $0.contains("] \"-\" 400 0 server=- retries=0 ") }
                let rejected414 = lines.filter { $0.contains("] \"-\" 414 0 server=- ") }
                XCTAssertEqual([ok.count, rejected400.count, rejected414.count], [1, 1, 1], "\(lines)")
                XCTAssertTrue(rejected400.first?.hasSuffix(" cause=proxy") ?? false, "\(lines)")
            }
        }
    }
}

import Foundation
import XCTest

/// `stats.latency: false` stops the latency histograms and nothing else: counters still count every request.
final class StatsSwitchTests: IntegrationTestCase {
    func testLatencyOffKeepsCountersAndEmptiesHistograms() throws {
        let backend = try LBBinaries.startDemoBackend(name: "b1")
        let lb = try startProxy(backends: [backend.address], settings: ["stats": ["latency": false]])
        let c = try RawHTTPConnection(port: lb.proxyPort)
        for i in 0..<20 {
            try c.send("GET /s/\(i) HTTP/1.1\r\nHost: s\r\n\r\n")
            XCTAssertEqual(try c.readResponse().status, 200)
        }
        let stats = try JSONSerialization.jsonObject(
            with: Data(HTTPClient.get(port: lb.adminPort, path: "/api/stats").body)) as? [String: Any]
        let requests = stats?["requests"] as? [String: Any]
        XCTAssertEqual(requests?["total"] as? Int, 20)
        let latency = (stats?["latency"] as? [String: Any])?["request"] as? [String: Any]
        XCTAssertEqual(latency?["count"] as? Int, 0, "\(String(describing: latency))")
        let metrics = try HTTPClient.get(port: lb.adminPort, path: "/metrics").bodyString
        XCTAssertTrue(metrics.contains("lb_request_duration_seconds_count 0"), metrics)
    }
}

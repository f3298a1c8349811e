import XCTest

@testable import LBServer

/// The Prometheus text writer: HELP/TYPE lines, escaping, number formatting and histogram series.
final class PrometheusTextTests: XCTestCase {
    func testFamilyAndSamplesInExpositionFormat() {
        var m = PrometheusText()
        m.family("lb_x_total", .counter, "Things.")
        m.sample("lb_x_total", [("server", "a"), ("code_class", "2xx")], UInt64(3))
        m.sample("lb_x_total", [], 0.25)
        XCTAssertEqual(
            m.text,
            "# HELP lb_x_total Things.\n# TYPE lb_x_total counter\n"
                + "lb_x_total{server=\"a\",code_class=\"2xx\"} 3\nlb_x_total 0.25\n")
    }

    func testLabelValuesAndHelpAreEscaped() {
        XCTAssertEqual(PrometheusText.escapeLabel(#"a"b\c"# + "\nd"), #"a\"b\\c\nd"#)
        XCTAssertEqual(PrometheusText.escapeHelp("x\\y\nz \"q\""), #"x\\y\nz "q""#)
    }

    func testNumbersFormatAsPrometheusReadsThem() {
        XCTAssertEqual(PrometheusText.format(3), "3")
        XCTAssertEqual(PrometheusText.format(0.0005), "0.0005")
        XCTAssertEqual(PrometheusText.format(.infinity), "+Inf")
        XCTAssertEqual(PrometheusText.format(.nan), "NaN")
    }

    func testHistogramBucketsAreCumulativeAndEndWithCount() {
        var latency = Latency()
        for micros in [100, 800, 3_000, 40_000, 2_000_000] as [UInt64] { latency.record(nanos: micros * 1000) }
        var m = PrometheusText()
        m.histogram("h", [("server", "s")], latency)
        let lines = m.text.split(separator: "\n")
        let buckets = lines.filter { $0.hasPrefix("h_bucket") }.map { UInt64($0.split(separator: " ").last!)! }
        XCTAssertEqual(buckets.count, PrometheusText.latencyBuckets.count + 1)
        XCTAssertEqual(buckets, buckets.sorted(), "cumulative")
        XCTAssertEqual(buckets.last, 5)
        XCTAssertTrue(lines.contains(#"h_bucket{server="s",le="0.0005"} 1"#), m.text)
        XCTAssertTrue(lines.contains(#"h_bucket{server="s",le="0.001"} 2"#), m.text)
        XCTAssertTrue(lines.contains(#"h_bucket{server="s",le="0.05"} 4"#), m.text)
        XCTAssertTrue(lines.contains(#"h_count{server="s"} 5"#), m.text)
    }
}

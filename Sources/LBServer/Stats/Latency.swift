import Histogram

/// A latency distribution in microseconds (1 µs .. 1 h, 2 significant digits: percentiles within 1%).
/// Recorded on the loop thread that owns it; merged across workers on read.
struct Latency {
    static let maxMicros: UInt64 = 3_600_000_000
    private(set) var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: Latency.maxMicros, numberOfSignificantValueDigits: .two)

    @inline(__always)
    mutating func record(nanos: UInt64) {
        _ = histogram.record(Swift.min(Swift.max(nanos / 1000, 1), Latency.maxMicros))
    }

    mutating func merge(_ other: Latency) { histogram.add(other.histogram) }

    var count: UInt64 { histogram.totalCount }

    /// Seconds at `percentile` (0...100); 0 when empty.
    func seconds(atPercentile p: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(p)) / 1e6
    }

    var maxSeconds: Double { count == 0 ? 0 : Double(histogram.max) / 1e6 }

    /// Sum of all recorded values in seconds (mean × count), for Prometheus `_sum`.
    var sumSeconds: Double { count == 0 ? 0 : histogram.mean * Double(count) / 1e6 }

    /// Observations at or below `seconds` (Prometheus cumulative bucket).
    func count(atOrBelow seconds: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let micros = UInt64(seconds * 1e6)
        return histogram.count(within: 0...Swift.min(micros, Latency.maxMicros))
    }
}

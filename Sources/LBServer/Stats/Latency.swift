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

    /// The non-empty buckets as `[value, count]` pairs (value in µs, the highest of its bucket): how a hot
    /// upgrade carries the distribution (`CarriedCounters`); `add(buckets:)` puts each count back in its bucket.
    var buckets: [[UInt64]] { histogram.recordedValues().map { [$0.value, UInt64($0.count)] } }

    /// Adds the `[value, count]` pairs of `buckets` (as `buckets` wrote them); anything else in it is ignored.
    mutating func add(buckets: Any?) {
        for pair in buckets as? [[Any]] ?? [] where pair.count == 2 {
            guard let value = CarriedCounters.count(pair[0]), let n = CarriedCounters.count(pair[1]), n > 0 else {
                continue
            }
            _ = histogram.record(Swift.min(Swift.max(value, 1), Latency.maxMicros), count: n)
        }
    }

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

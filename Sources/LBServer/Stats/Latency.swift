import Histogram

/// A latency distribution in microseconds (1 µs .. 1 h, 2 significant digits: percentiles within 1%).
/// Recorded on the loop thread that owns it; merged across workers on read.
///
/// The histogram's counts take about 26 KB, so it is allocated at the first recorded value: a server that has
/// served nothing (of 1,000, on a worker that never picked it), and the empty entries the admin API and the
/// stats merge start from, cost nothing.
struct Latency {
    static let maxMicros: UInt64 = 3_600_000_000
    private var stored: Histogram<UInt64>?

    static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: Latency.maxMicros, numberOfSignificantValueDigits: .two)
    }

    /// The distribution; an empty one (allocated for the call) before the first value.
    var histogram: Histogram<UInt64> { stored ?? Latency.makeHistogram() }

    @inline(__always)
    mutating func record(nanos: UInt64) {
        record(micros: Swift.min(Swift.max(nanos / 1000, 1), Latency.maxMicros), count: 1)
    }

    @inline(__always)
    private mutating func record(micros: UInt64, count: UInt64) {
        // Optional chaining records in place; testing `stored == nil` first copied the histogram (a retain and a
        // release of its counts, a cache miss per request when a worker spreads requests over many servers).
        if stored?.record(micros, count: count) == nil {
            var histogram = Latency.makeHistogram()
            _ = histogram.record(micros, count: count)
            stored = histogram
        }
    }

    /// Adds `other`'s values. Into an empty distribution it is a copy that shares `other`'s storage until
    /// either is written.
    mutating func merge(_ other: Latency) {
        guard let theirs = other.stored else { return }
        if stored == nil {
            stored = theirs
        } else {
            stored!.add(theirs)
        }
    }

    var count: UInt64 { stored?.totalCount ?? 0 }

    /// The non-empty buckets as `[value, count]` pairs (value in µs, the highest of its bucket): how a hot
    /// upgrade carries the distribution (`CarriedCounters`); `add(buckets:)` puts each count back in its bucket.
    var buckets: [[UInt64]] { stored?.recordedValues().map { [$0.value, UInt64($0.count)] } ?? [] }

    /// Adds the `[value, count]` pairs of `buckets` (as `buckets` wrote them); anything else in it is ignored.
    mutating func add(buckets: Any?) {
        for pair in buckets as? [[Any]] ?? [] where pair.count == 2 {
            guard let value = CarriedCounters.count(pair[0]), let n = CarriedCounters.count(pair[1]), n > 0 else {
                continue
            }
            record(micros: Swift.min(Swift.max(value, 1), Latency.maxMicros), count: n)
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

/// Writes the Prometheus text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): one `# HELP` and one `# TYPE` line per family,
/// then its samples. Label values escape `\`, `"` and newline; HELP text escapes `\` and newline.
///
/// A family's samples must be written together, right after its `family` call (the format forbids interleaving);
/// the writer does not check this, `AdminServer.metricsText` keeps to it.
struct PrometheusText {
    enum Kind: String {
        case counter, gauge, histogram
    }

    /// Upper bounds (seconds) of the latency histogram buckets, from 0.5 ms to 10 s; `+Inf` is added.
    static let latencyBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    private(set) var text = ""

    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(PrometheusText.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name
        text += PrometheusText.labelText(labels)
        text += " \(PrometheusText.format(value))\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: UInt64) {
        text += name
        text += PrometheusText.labelText(labels)
        text += " \(value)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Int) {
        sample(name, labels, UInt64(max(0, value)))
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram series, from a `Latency`. Buckets are cumulative
    /// and never exceed `_count` (HdrHistogram counts within 1% of each bound).
    mutating func histogram(_ name: String, _ labels: [(String, String)] = [], _ latency: Latency) {
        for bound in PrometheusText.latencyBuckets {
            sample(name + "_bucket", labels + [("le", PrometheusText.format(bound))], latency.count(atOrBelow: bound))
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], latency.count)
        sample(name + "_sum", labels, latency.sumSeconds)
        sample(name + "_count", labels, latency.count)
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// Label values escape backslash, double quote and newline (text format 0.0.4).
    static func escapeLabel(_ value: String) -> String { escape(value, quote: true) }

    /// HELP text escapes backslash and newline only.
    static func escapeHelp(_ value: String) -> String { escape(value, quote: false) }

    private static func escape(_ value: String, quote: Bool) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"" where quote: out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// Integers without a fraction (`3`, not `3.0`); others in Swift's shortest round-trip form; `+Inf`, `NaN`.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

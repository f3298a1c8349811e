/// Durations in config are kept as whole milliseconds (`UInt64`), the unit libuv timers take.
///
/// Accepted: a number of seconds (`3`, `0.25`) or a string with a unit: `"250ms"`, `"1.5s"`, `"1m"`, `"1h"`.
/// The result must be at least 1 ms; there is no "0 = off" (every timeout here must fire eventually).
enum ConfigDuration {
    static let hint = "use a number of seconds or a string like \"500ms\", \"2s\", \"1m\""

    /// Upper bound: a week. Larger values are almost certainly a unit mistake and would risk overflow later.
    static let maxMilliseconds: UInt64 = 7 * 24 * 3600 * 1000

    static func milliseconds(_ value: JSONValue) throws(ConfigValueError) -> UInt64 {
        switch value {
        case .number(let text):
            guard let seconds = Double(text) else { throw ConfigValueError("\(text) is not a duration; \(hint)") }
            return try checked(seconds * 1000, written: text)
        case .string(let text):
            return try milliseconds(parsing: text)
        default:
            throw ConfigValueError("expected a duration, got \(value.kindDescription); \(hint)")
        }
    }

    /// Parses `"<number><unit>"` with unit ms, s, m or h.
    static func milliseconds(parsing text: String) throws(ConfigValueError) -> UInt64 {
        let units: [(suffix: String, ms: Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for unit in units where text.hasSuffix(unit.suffix) {
            let number = text.dropLast(unit.suffix.count)
            // Double("inf"), Double("0x10") and friends are not durations a person writes.
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                let value = Double(number)
            else { break }
            return try checked(value * unit.ms, written: quoted(text))
        }
        throw ConfigValueError("\(quoted(text)) is not a duration; \(hint)")
    }

    private static func checked(_ ms: Double, written: String) throws(ConfigValueError) -> UInt64 {
        guard ms.isFinite, ms > 0 else { throw ConfigValueError("\(written) must be greater than 0") }
        guard ms.rounded() >= 1 else { throw ConfigValueError("\(written) is shorter than 1ms") }
        guard ms <= Double(maxMilliseconds) else { throw ConfigValueError("\(written) is longer than a week") }
        return UInt64(ms.rounded())
    }

    /// The shortest exact spelling, e.g. 1500 → "1500ms", 2000 → "2s", 60000 → "1m"; used in docs and messages.
    static func format(_ ms: UInt64) -> String {
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

import Foundation

/// The health fields of `GET /api/servers` (admin API, control loop; JSONSerialization values).
extension BackendHealth {
    /// `{"ok":..,"code":..,"error":..,"duration_ms":..,"at":"ISO8601"}`, or null before the first check.
    func lastCheckJSON() -> Any {
        guard let c = snapshot.lastCheck else { return NSNull() }
        let formatter = BackendHealth.checkTimeFormatter
        return [
            "ok": c.ok, "code": c.code.map { $0 as Any } ?? NSNull(), "error": c.error.map { $0 as Any } ?? NSNull(),
            "duration_ms": c.durationMs, "at": formatter.string(from: c.at),
        ] as [String: Any]
    }

    /// One formatter for every server on every call (the dashboard polls /api/servers each second). Used only
    /// on the control loop.
    nonisolated(unsafe) private static let checkTimeFormatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()

    /// `{"consecutive_failures":..,"transitions":..,"downtime_s":..}`; `now` is the loop clock (ms).
    func summaryJSON(now: UInt64) -> [String: Any] {
        let state = snapshot.state
        return [
            "consecutive_failures": state.consecutiveFailures, "transitions": state.transitions,
            "downtime_s": Double(state.downtimeMs(now: now)) / 1000,
            "passive_consecutive_failures": consecutivePassiveFailures,
        ]
    }
}

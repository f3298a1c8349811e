import Foundation

/// Polls `condition` every `interval` seconds until it returns true.
///
/// Use instead of fixed sleeps when waiting for something asynchronous (a health check marking a backend down, a
/// drained connection closing). An error thrown by `condition` ends the wait and is rethrown.
/// - Throws: `HarnessError.conditionNotMet(description)` if it is still false after `timeout` seconds.
func eventually(
    timeout: TimeInterval = 5,
    interval: TimeInterval = 0.02,
    _ description: @autoclosure () -> String = "condition",
    _ condition: () throws -> Bool
) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return }
        if Date() >= deadline { throw HarnessError.conditionNotMet(description: description(), timeout: timeout) }
        Thread.sleep(forTimeInterval: interval)
    }
}

/// User plus system CPU time `pid` has used, in seconds (/proc/PID/stat fields 14 and 15).
func cpuSeconds(pid: Int32) throws -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { throw HarnessError.procUnreadable(pid: pid, field: "stat") }
    // After "pid (comm)": field 3 (state) is at index 0, so utime (14) and stime (15) are at 11 and 12.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
        throw HarnessError.procUnreadable(pid: pid, field: "stat")
    }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Resident set size of `pid` now (VmRSS in /proc/PID/status), in KiB.
/// - Throws: `HarnessError.procUnreadable` if the process is gone: a vanished process must not read as 0 KiB and
///   pass a memory-limit assertion.
func rssKiB(pid: Int32) throws -> Int { try procStatusKiB(pid: pid, field: "VmRSS") }

/// Peak resident set size of `pid` (VmHWM in /proc/PID/status), in KiB.
func peakRssKiB(pid: Int32) throws -> Int { try procStatusKiB(pid: pid, field: "VmHWM") }

private func procStatusKiB(pid: Int32, field: String) throws -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else {
        throw HarnessError.procUnreadable(pid: pid, field: field)
    }
    // The line reads e.g. "VmRSS:\t   12345 kB".
    for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
        let number = line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
        if let number, let kib = Int(number) { return kib }
    }
    throw HarnessError.procUnreadable(pid: pid, field: field)
}

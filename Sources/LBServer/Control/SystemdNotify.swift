import CLibUV
import Foundation

/// systemd's readiness protocol (sd_notify) without libsystemd: newline-separated `KEY=VALUE` lines in one
/// datagram to the Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
/// Without `NOTIFY_SOCKET` (not started by systemd with `Type=notify`) every call does nothing. Failures are
/// ignored: readiness reporting must never stop the balancer. Any thread.
///
/// What lb-server sends: `READY=1` with `MAINPID` once it accepts (a successor too: its `MAINPID` moves the
/// unit's main process to it, which needs `NotifyAccess=all`), `RELOADING=1` with `MONOTONIC_USEC` on SIGHUP
/// and `READY=1` after, `STOPPING=1` on SIGTERM/SIGINT, and `STATUS=` lines saying what it is doing.
enum SystemdNotify {
    /// Sends `fields` (e.g. `["READY=1", "STATUS=serving"]`) as one message. Returns false when nothing was sent.
    @discardableResult
    static func send(_ fields: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
        -> Bool
    {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        let message = Array((fields.joined(separator: "\n") + "\n").utf8)
        return message.withUnsafeBytes { lb_unix_datagram_send(path, $0.baseAddress, $0.count) } == 0
    }

    /// `READY=1` with this process as the unit's main process.
    static func ready(status: String) {
        send(["READY=1", "MAINPID=\(getpid())", "STATUS=\(status)"])
    }

    /// `RELOADING=1` with the monotonic timestamp systemd (Type=notify-reload) matches the reload against.
    static func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        send(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=reloading the configuration"])
    }

    static func stopping() { send(["STOPPING=1", "STATUS=draining for shutdown"]) }

    static func status(_ text: String) { send(["STATUS=\(text)"]) }
}

import Foundation

/// A successor's link to the lb-server it replaces, over that process's control socket: blocking, used before
/// this process serves (and, for the final `ready`, from a thread of its own). Made by `lb-server --takeover`,
/// the process that `lb-server --upgrade` has the running instance start.
///
/// Order: `init` (connect), `requestHandOff()` (the sockets and state), then `ProxyServer(successor:)` and
/// `start()`, which takes it from there. `abort(_:)` at any point before `ready` leaves the running process
/// serving untouched.
public final class Successor: @unchecked Sendable {
    let client: ControlClient
    /// How long the first health checks may take before this successor gives up.
    public let readinessTimeoutMs: UInt64
    /// The hand-off state, after `requestHandOff()`. The descriptors in it are consumed by `ProxyServer.start`.
    var handOff: HandOff?

    /// Connects to the running instance's control socket. `readinessTimeout` is the `--upgrade-timeout` text
    /// (default 30 s). Throws when nobody answers there or the timeout is not a duration.
    public init(controlSocket: String, readinessTimeout: String?) throws(ControlError) {
        readinessTimeoutMs = try UpgradeCommand.timeoutMs(readinessTimeout)
        client = try ControlClient(path: controlSocket)
    }

    /// Asks for the listening sockets and the runtime state. Throws with the running instance's refusal or a
    /// transport error; nothing has changed in the running process then.
    public func requestHandOff() throws(ControlError) {
        let answer = try client.request(["request": "takeover"], timeout: 10)
        handOff = try HandOff(message: answer.reply, descriptors: answer.descriptors)
    }

    /// The pid of the process being replaced (after `requestHandOff()`).
    public var predecessorPID: Int32? { handOff?.pid }

    /// Tells the running instance why this successor gives up (its `lb-server --upgrade` prints it), and closes
    /// the connection. Best effort: the running process also learns from this process's exit.
    public func abort(_ message: String) {
        _ = try? client.request(["request": "abort", "error": message], timeout: 2)
        client.close()
    }

    /// Tells the running instance that this process accepts on every socket; returns once it has stopped
    /// accepting (it drains from then on), with its counters (`CarriedCounters` JSON) when it sent them: an
    /// older lb-server does not. Blocking: call it off the loop.
    func ready() throws(ControlError) -> [String: Any]? {
        defer { client.close() }
        let answer = try client.request(["request": "ready", "counters": CarriedCounters.format], timeout: 30)
        return answer.reply["counters"] as? [String: Any]
    }
}

/// When a successor may start accepting: a pure decision over what its health checks have seen so far.
///
/// Ready when every server with active checks has had its first check and at least one passed; with no
/// server checked (checks disabled) at once; and also when none passed but the previous process had no
/// server up either (an upgrade must not be held hostage by backends that were already down). Otherwise it
/// waits, and fails at the deadline.
enum TakeoverReadiness: Equatable {
    case wait
    case ready
    case fail(String)

    struct Server {
        var checked: Bool
        var passed: Bool
    }

    /// `servers`: those with active checks on. `previousUp`: servers the previous process had up.
    static func evaluate(servers: [Server], previousUp: Int, elapsedMs: UInt64, timeoutMs: UInt64) -> Self {
        let checked = servers.filter(\.checked).count
        let passed = servers.filter(\.passed).count
        if servers.isEmpty || passed > 0 && checked == servers.count { return .ready }
        if checked == servers.count && previousUp == 0 { return .ready }
        guard elapsedMs >= timeoutMs else { return .wait }
        if passed > 0 { return .ready }  // some servers never answered in time, but others pass: serve
        return .fail(
            "no server passed its first health check within \(timeoutMs) ms (\(checked) of \(servers.count) checked)")
    }
}

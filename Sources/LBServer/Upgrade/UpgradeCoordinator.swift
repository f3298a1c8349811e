import Foundation
import LBUV
import Logging

/// The running process's side of a hot upgrade, on the control loop.
///
/// `upgrade` (from `lb-server --upgrade`) starts the successor binary as a child of this process, so it
/// inherits what the service manager gave this one: its cgroup and sandbox, its environment (`NOTIFY_SOCKET`
/// among it) and its standard output and error. Then only that child (recognised by the pid of its control
/// connection) may ask for `takeover` (every listening socket, passed with SCM_RIGHTS, and the runtime state)
/// and say `ready`. On `ready` this process stops accepting on every worker, answers, and drains; the caller
/// hears `ok` with both pids. If the child says `abort`, exits, or is not ready in time (it is killed then),
/// the caller hears why and this process goes on serving: it never stopped.
///
/// One upgrade at a time. Threads: control loop only.
final class UpgradeCoordinator {
    private unowned let server: ProxyServer
    private var child: ChildProcess?
    private var caller: ControlSession?
    private var deadline: LoopTimer?
    private var abortReason: String?
    private var timeoutMs: UInt64 = 0

    init(server: ProxyServer) { self.server = server }

    var successorPID: Int32? { child?.pid }

    /// Starts `binary` as the successor and answers `caller` when the upgrade is over. The child gets
    /// `timeoutMs` for its own readiness; it is killed 5 s after that.
    func start(binary: String, arguments: [String], directory: String?, timeoutMs: UInt64, caller: ControlSession) {
        if let pid = child?.pid {
            caller.reply(ControlMessage.failure("an upgrade to pid \(pid) is already in progress"))
            return
        }
        let process: ChildProcess
        do {
            process = try ChildProcess(
                loop: server.loop, executable: binary, arguments: arguments, directory: directory, newSession: true)
        } catch {
            caller.reply(ControlMessage.failure("\(error)"))
            return
        }
        child = process
        self.caller = caller
        abortReason = nil
        self.timeoutMs = timeoutMs
        process.onExit = { [unowned self] status, signal in self.childExited(status: status, signal: signal) }
        let timer = LoopTimer(loop: server.loop) { [unowned self] in
            self.abortReason = self.abortReason ?? "the successor was not ready within \(timeoutMs) ms; stopped it"
            self.child?.kill(SIGKILL)
        }
        timer.start(timeout: timeoutMs + 5_000)
        deadline = timer
        server.logger.info("upgrade: started the successor", metadata: [
            "pid": "\(process.pid)", "binary": "\(binary)",
        ])
    }

    /// True when `session` comes from the successor this process started.
    private func isSuccessor(_ session: ControlSession) -> Bool {
        guard let child else { return false }
        return session.peerPID == child.pid
    }

    /// `takeover`: the hand-off state with every listening socket attached.
    func takeover(_ session: ControlSession) {
        guard isSuccessor(session) else {
            session.reply(ControlMessage.failure("takeover is only for the successor this lb-server started"))
            return
        }
        var state = server.handOffState()
        let (object, descriptors) = state.message()
        state.wipeTicketKeys()
        server.logger.info("upgrade: passing the listening sockets", metadata: [
            "pid": "\(session.peerPID)", "sockets": "\(descriptors.count)",
        ])
        session.reply(object, descriptors: descriptors)
    }

    /// `ready`: stop accepting everywhere, then answer the successor and the caller; drain from then on. When the
    /// successor reads this build's `CarriedCounters` format, the answer carries the counters collected once
    /// every worker has stopped accepting and the admin API has closed (so they are at least what any answer
    /// of this process showed), and the final ones follow after the drain (`ProxyServer.sendFinalCounters`).
    func ready(_ session: ControlSession, countersFormat: Int?) {
        guard isSuccessor(session), let process = child else {
            session.reply(ControlMessage.failure("ready is only for the successor this lb-server started"))
            return
        }
        deadline?.close()
        deadline = nil
        let newPID = process.pid
        let oldPID = Int(getpid())
        let carry = countersFormat == CarriedCounters.format
        server.beginShutdown(.handOff(successor: newPID)) { [weak self] in
            let answer = { [weak self] (counters: [String: Any]?) in
                var object: [String: Any] = ["ok": true, "pid": oldPID]
                if let counters { object["counters"] = counters }
                session.reply(object)
                self?.caller?.reply(["ok": true, "old_pid": oldPID, "new_pid": Int(newPID)])
                self?.caller = nil
                // Stop watching the successor; it runs on (and is reparented when this process exits).
                process.close()
                self?.child = nil
            }
            guard carry, let server = self?.server else { return answer(nil) }
            server.finalCountersTo = newPID
            server.collectStats { [unowned server] total in
                answer(CarriedCounters(total, servers: server.routing.load().backends.map(\.spec)).json())
            }
        }
    }

    /// `abort`: the successor gives up; the reason goes to the caller when it exits.
    func abort(_ session: ControlSession, reason: String) {
        guard isSuccessor(session) else {
            session.reply(ControlMessage.failure("abort is only for the successor this lb-server started"))
            return
        }
        abortReason = reason
        session.reply(["ok": true])
    }

    private func childExited(status: Int64, signal: Int32) {
        let reason = abortReason
            ?? (signal != 0 ? "the successor was killed by signal \(signal)" : "the successor exited with status \(status)")
        server.logger.error("upgrade failed; this process keeps serving", metadata: ["reason": "\(reason)"])
        caller?.reply([
            "ok": false, "error": "\(reason); pid \(getpid()) keeps serving", "old_pid": Int(getpid()),
        ])
        caller = nil
        deadline?.close()
        deadline = nil
        child?.close()
        child = nil
    }

    /// This process is shutting down: stop the successor that has not taken over; the caller hears `reason`.
    func cancel(reason: String) {
        guard let child else { return }
        abortReason = reason
        child.kill(SIGTERM)
    }

    /// Closes the handles (shutdown): a successor still starting is no longer watched.
    func close() {
        deadline?.close()
        deadline = nil
        if let pid = child?.pid {
            caller?.reply(ControlMessage.failure(abortReason ?? "the running lb-server stopped during the upgrade (successor pid \(pid))"))
        }
        caller = nil
        child?.close()
        child = nil
    }
}

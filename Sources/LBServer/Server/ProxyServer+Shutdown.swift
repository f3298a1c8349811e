import Foundation
import LBUV

/// Graceful shutdown, for a signal or after a hot upgrade's hand-off. Control loop only.
extension ProxyServer {
    /// Why the process drains.
    enum ShutdownReason {
        /// SIGTERM or SIGINT: idle keep-alive clients close at once.
        case signal(Int32)
        /// A successor has taken over the sockets: idle keep-alive clients stay until their next response
        /// (`Connection: close`) or the deadline, so no request races the close.
        case handOff(successor: Int32)
    }

    /// SIGTERM/SIGINT: stop accepting, finish in-flight requests with `Connection: close`, then close every
    /// handle; in-flight work still running at the deadline (`timeouts.shutdown_grace`) is cut.
    func beginShutdown(signal: Int32) {
        beginShutdown(.signal(signal))
    }

    /// Stops accepting on every worker and drains. `stoppedAccepting` runs on the control loop once every
    /// worker has closed its listeners (a successor is told only then, so a connection made after that reaches
    /// it). A signal while already draining closes at once, except the first one after a hand-off, which only
    /// says the drain is under way (systemd's stop sends SIGTERM to every process of the unit).
    func beginShutdown(_ reason: ShutdownReason, stoppedAccepting: (() -> Void)? = nil) {
        if isShuttingDown {
            if case .signal = reason, handedOff {
                handedOff = false
                logger.warning("signal while draining after a hand-off; a second one closes now")
                return
            }
            if case .handOff = reason {
                stoppedAccepting?()
                return
            }
            logger.warning("second signal: closing now")
            finishShutdown()
            return
        }
        isShuttingDown = true
        let closeIdle: Bool
        switch reason {
        case .signal(let signal):
            closeIdle = true
            SystemdNotify.stopping()
            logger.info("shutting down", metadata: ["signal": "\(signal)", "grace_ms": "\(config.timeouts[.shutdownGrace])"])
            upgrade?.cancel(reason: "the running lb-server received signal \(signal) and is shutting down")
            if let pending = takeover {
                // A successor stopped before it accepted: the previous process keeps serving.
                takeover = nil
                exitStatus = 1
                pending.stop()
                pending.successor.abort("the successor received signal \(signal) before it took over")
            }
        case .handOff(let successor):
            closeIdle = false
            handedOff = true
            // No STOPPING=1: the unit goes on, with the successor as its main process.
            SystemdNotify.status("handed off to pid \(successor); draining")
            logger.info("handed off to the successor; draining", metadata: [
                "successor_pid": "\(successor)", "grace_ms": "\(config.timeouts[.shutdownGrace])",
            ])
        }
        let countdown = CountDown(count: threads.count + 1) { _ in stoppedAccepting?() }
        for t in threads {
            t.beginDrain(closeIdle: closeIdle) { [inbox = controlInbox] in inbox.post { countdown.finish(nil) } }
        }
        countdown.finish(nil)
        admin?.close()
        // After a hand-off the control socket's path is the successor's.
        if case .handOff = reason { control?.stopListening(removeFile: false) } else { control?.stopListening(removeFile: true) }
        health?.stop()
        // The registration goes at once: this instance takes no new connections from here on.
        etcdRegistration?.stop(revoke: true)
        etcdSource?.stop()
        dnsSource?.stop()
        let deadline = LoopTimer(loop: loop) { [unowned self] in
            self.logger.warning("shutdown grace period over: closing in-flight connections")
            self.finishShutdown()
        }
        deadline.start(timeout: config.timeouts[.shutdownGrace])
        shutdownTimer = deadline
        let poll = LoopTimer(loop: loop) { [unowned self] in
            if self.threads.allSatisfy({ $0.isDone }) {
                self.finishShutdown()
            }
        }
        poll.start(timeout: 0, repeat: 20)
        shutdownPoll = poll
    }

    func finishShutdown() {
        // First run what the worker threads have posted, then refuse more. The poll calls this once every worker
        // has ended, and a worker posts its `stoppedAccepting` before it can end, but libuv runs the poll's timer
        // before the inbox's wake-up in a loop turn: closed later, a hot upgrade's `stoppedAccepting` (which answers
        // the operator "upgraded") ran only after `upgrade?.close()` below had answered "the running lb-server
        // stopped during the upgrade". Seen with 2 workers under AddressSanitizer, where workers end slower.
        controlInbox.close()
        controlWork.stop()
        for t in threads where !t.isDone { t.closeNow() }
        admin?.close()
        shutdownTimer?.close()
        shutdownTimer = nil
        shutdownPoll?.close()
        shutdownPoll = nil
        for s in signals { s.close() }
        signals.removeAll()
        health?.stop()
        etcdRegistration?.stop()
        etcdSource?.stop()
        dnsSource?.stop()
        takeover?.stop()
        upgrade?.close()
        control?.close()
    }
}

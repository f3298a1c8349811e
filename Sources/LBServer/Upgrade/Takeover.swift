import Foundation
import LBCore
import LBUV
import Logging

/// The successor's side of a hot upgrade once `ProxyServer.start()` has adopted the sockets: wait for the first
/// health checks (`TakeoverReadiness`), start accepting everywhere, report readiness to systemd (`MAINPID` moves
/// the unit's main process here), move the control socket to its path, and tell the previous process to stop
/// accepting and drain. Any failure before accepting gives up: the previous process is told why, this one
/// closes everything and exits 1, and nothing changed for clients.
///
/// Threads: control loop, except the final blocking `ready` exchange, which runs on a thread of its own.
final class Takeover {
    let successor: Successor
    private var poll: LoopTimer?
    private var startedAt: UInt64 = 0
    private var accepting = false

    init(successor: Successor) { self.successor = successor }

    func begin(server: ProxyServer) {
        startedAt = server.loop.now
        let timer = LoopTimer(loop: server.loop) { [unowned self, unowned server] in self.check(server) }
        timer.start(timeout: 0, repeat: 50)
        poll = timer
    }

    private func check(_ server: ProxyServer) {
        guard !accepting, !server.isShuttingDown else { return }
        var servers: [TakeoverReadiness.Server] = []
        for b in server.routing.load().backends where server.config.healthCheck(forServer: b.spec.id).enabled {
            let last = b.health.snapshot.lastCheck
            servers.append(.init(checked: last != nil, passed: last?.ok == true))
        }
        let previousUp = successor.handOff?.servers.filter { $0.up && !$0.draining }.count ?? 0
        let elapsed = server.loop.now - startedAt
        switch TakeoverReadiness.evaluate(
            servers: servers, previousUp: previousUp, elapsedMs: elapsed, timeoutMs: successor.readinessTimeoutMs)
        {
        case .wait:
            return
        case .fail(let reason):
            giveUp(server, reason)
        case .ready:
            accepting = true
            poll?.close()
            poll = nil
            server.logger.info("first health checks done; accepting", metadata: ["after_ms": "\(elapsed)"])
            server.startAccepting { [unowned self, unowned server] error in
                if let error { return self.giveUp(server, "cannot accept: \(error)") }
                self.serving(server)
            }
        }
    }

    /// Accepting everywhere: from here on this process serves even if the previous one never answers.
    private func serving(_ server: ProxyServer) {
        let previous = successor.handOff?.pid ?? 0
        SystemdNotify.ready(status: "serving; took over from pid \(previous)")
        do {
            try server.control?.install()
        } catch {
            server.logger.error("\(error); the next upgrade must name that path")
        }
        let link = successor
        let inbox = server.controlInbox
        let logger = server.logger
        // The admin API accepts only once the previous process's counters are in (or it did not answer), so
        // no answer of this process shows less than one of the previous process did: its admin API closed
        // before it answered `ready`, and connections wait in the shared socket's queue meanwhile.
        let owner = UncheckedSendable(server)
        let thread = Thread {
            do {
                let counters = UncheckedSendable(try link.ready())
                inbox.post {
                    logger.info("hand-off complete; the previous process drains", metadata: ["pid": "\(previous)"])
                    if let object = counters.value { owner.value.adoptCarriedCounters(object, final: false) }
                    owner.value.startAdminAccepting()
                }
            } catch {
                inbox.post {
                    logger.warning("the previous process did not confirm the hand-off; serving anyway", metadata: [
                        "pid": "\(previous)", "error": "\(error)",
                    ])
                    owner.value.startAdminAccepting()
                }
            }
        }
        thread.name = "lb-handoff"
        thread.start()
        server.takeover = nil  // last: this object goes with it
    }

    /// Stops waiting (shutdown).
    func stop() {
        poll?.close()
        poll = nil
    }

    /// Before accepting: tell the previous process why, close everything, exit 1.
    private func giveUp(_ server: ProxyServer, _ reason: String) {
        poll?.close()
        poll = nil
        server.logger.error("upgrade abandoned; the previous process keeps serving", metadata: ["reason": "\(reason)"])
        successor.abort(reason)
        server.abandonTakeover()
    }
}

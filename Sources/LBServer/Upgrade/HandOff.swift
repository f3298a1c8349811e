import Foundation
import Glibc
import LBCore
import LBTLS
import LBUV

/// What a running lb-server hands its successor in answer to `takeover`: every listening socket (attached as
/// descriptors, in the order of `listeners` and then `admin`) and the runtime state the successor starts from.
///
/// Carried: the listening sockets of every worker (each SO_REUSEPORT socket, so no accept queue is dropped) and
/// the admin socket; the server set as the admin API left it (ids, addresses, weights), each server's drain flag
/// and whether health checks had it up; each TLS listener's session-ticket keys when they were made in memory
/// (with a `ticket_key_file` both read the file). Counters come later in the conversation, not here: in the
/// answer to `ready` and, after the drain, in `final_counters` (`CarriedCounters`). Not carried: rates, pooled
/// upstream connections, passive-failure streaks.
///
/// Compatibility: every field added after the first version is optional on reading, so a successor taking over
/// from an older lb-server gets what that one sends (no ticket keys: its clients do a full handshake once), and
/// an older successor ignores what it does not know.
///
/// The ticket keys are secret: they travel only in this answer, over the control socket (mode 0600, peers of
/// another uid refused, and `takeover` answered only to the successor's pid), are never logged, and sit under
/// a key that sorts after `listeners` so that no error message quoting the start of a line can show them.
struct HandOff {
    /// The sockets of one configured listener (or of the admin API), all workers' together.
    struct ListenerGroup {
        /// The address as configured (`127.0.0.1:0`), which the successor's config is matched against first.
        var configured: String
        /// The address the sockets are bound to (the real port when configured with port 0).
        var bound: String
        var tls: Bool
        var descriptors: [Int32]
        /// The listener's in-memory session-ticket keys (`TLSTicketKeys.exportForSuccessor()`), sealing key
        /// first; empty for a plain listener, one with a `ticket_key_file`, or a predecessor that sent none.
        var ticketKeys: [[UInt8]] = []
    }

    struct Server {
        var spec: ServerSpec
        var draining: Bool
        var up: Bool
    }

    var pid: Int32
    var version: String
    var workers: Int
    var listeners: [ListenerGroup]
    var admin: ListenerGroup?
    var servers: [Server]

    /// The answer to `takeover`: the JSON object and the descriptors to attach, in order.
    func message() -> (object: [String: Any], descriptors: [Int32]) {
        func group(_ g: ListenerGroup) -> [String: Any] {
            ["address": g.configured, "bound": g.bound, "tls": g.tls, "sockets": g.descriptors.count]
        }
        var object: [String: Any] = [
            "ok": true, "pid": Int(pid), "version": version, "workers": workers,
            "listeners": listeners.map(group),
            "servers": servers.map { s -> [String: Any] in
                [
                    "id": s.spec.id, "host": s.spec.host, "port": s.spec.port, "weight": s.spec.weight,
                    "draining": s.draining, "up": s.up,
                ]
            },
        ]
        if let admin { object["admin"] = group(admin) }
        if listeners.contains(where: { !$0.ticketKeys.isEmpty }) {
            object["tls_ticket_keys"] = listeners.map { g in g.ticketKeys.map { Data($0).base64EncodedString() } }
        }
        return (object, listeners.flatMap(\.descriptors) + (admin?.descriptors ?? []))
    }

    /// Reads a `takeover` answer. Takes ownership of `descriptors`: on a throw every one is closed.
    init(message object: [String: Any], descriptors: [Int32]) throws(ControlError) {
        var remaining = descriptors[...]
        do throws(ControlError) {
            func number(_ key: String, in o: [String: Any]) throws(ControlError) -> Int {
                guard let n = (o[key] as? NSNumber)?.intValue else { throw ControlError("takeover answer: no \(key)") }
                return n
            }
            func group(_ o: Any?) throws(ControlError) -> ListenerGroup {
                guard let o = o as? [String: Any], let configured = o["address"] as? String,
                    let bound = o["bound"] as? String
                else { throw ControlError("takeover answer: a listener without its addresses") }
                let count = try number("sockets", in: o)
                guard count >= 1, count <= remaining.count else {
                    throw ControlError("takeover answer: \(remaining.count) sockets arrived, more were announced")
                }
                let fds = Array(remaining.prefix(count))
                remaining = remaining.dropFirst(count)
                return ListenerGroup(configured: configured, bound: bound, tls: o["tls"] as? Bool ?? false, descriptors: fds)
            }
            pid = Int32(try number("pid", in: object))
            version = object["version"] as? String ?? "?"
            workers = try number("workers", in: object)
            guard let list = object["listeners"] as? [Any] else { throw ControlError("takeover answer: no listeners") }
            listeners = []
            for l in list { listeners.append(try group(l)) }
            admin = object["admin"] == nil ? nil : try group(object["admin"])
            // One list per listener, in order; anything else (an older or a confused sender) carries no keys.
            if let keys = object["tls_ticket_keys"] as? [[String]], keys.count == listeners.count {
                for (i, list) in keys.enumerated() {
                    listeners[i].ticketKeys = list.compactMap { Data(base64Encoded: $0).map { [UInt8]($0) } }
                }
            }
            guard let serverList = object["servers"] as? [[String: Any]] else {
                throw ControlError("takeover answer: no servers")
            }
            servers = []
            for s in serverList {
                guard let id = s["id"] as? String, let host = s["host"] as? String else {
                    throw ControlError("takeover answer: a server without id or host")
                }
                let spec = ServerSpec(
                    id: id, host: host, port: try number("port", in: s), weight: try number("weight", in: s))
                servers.append(Server(spec: spec, draining: s["draining"] as? Bool ?? false, up: s["up"] as? Bool ?? true))
            }
            guard remaining.isEmpty else {
                throw ControlError("takeover answer: \(remaining.count) sockets more than announced")
            }
        } catch {
            for d in descriptors { Glibc.close(d) }
            throw error
        }
    }

    init(pid: Int32, version: String, workers: Int, listeners: [ListenerGroup], admin: ListenerGroup?, servers: [Server]) {
        self.pid = pid
        self.version = version
        self.workers = workers
        self.listeners = listeners
        self.admin = admin
        self.servers = servers
    }

    /// Spreads one listener's inherited sockets over `workers` workers: worker `w` takes sockets `w`, `w + n`,
    /// `w + 2n`... so every socket (every accept queue) is served. With fewer sockets than workers, the workers
    /// without one share a duplicate of another's (both loops poll one socket; the kernel hands each
    /// connection to one of them). Returns one list per worker; the caller owns every descriptor in them.
    static func distribute(_ fds: [Int32], workers n: Int) -> [[Int32]] {
        var perWorker = [[Int32]](repeating: [], count: max(1, n))
        guard !fds.isEmpty else { return perWorker }
        for (i, fd) in fds.enumerated() { perWorker[i % perWorker.count].append(fd) }
        if fds.count < perWorker.count {
            for w in fds.count..<perWorker.count {
                let copy = fcntl(fds[w % fds.count], F_DUPFD_CLOEXEC, 0)
                if copy >= 0 { perWorker[w].append(copy) }
            }
        }
        return perWorker
    }
}

extension HandOff {
    /// Overwrites and drops the ticket keys once they have been sent or used. Best effort: an array whose bytes
    /// another copy still shares is copied, not overwritten, so the caller drops its other copies first; the
    /// JSON text and `Data` made from the keys while encoding and decoding are Foundation's and are not wiped.
    mutating func wipeTicketKeys() {
        for i in listeners.indices {
            for k in listeners[i].ticketKeys.indices {
                TLSTicketKeys.wipe(&listeners[i].ticketKeys[k])
            }
            listeners[i].ticketKeys = []
        }
    }

    /// Which inherited group serves a listener of the new config: the one configured with the same address
    /// (so `127.0.0.1:0` in tests finds the port it got last time), else the one bound to the address it
    /// resolves to. Nil: bind afresh.
    static func match(_ groups: [ListenerGroup], configured: HostPort, resolved: SocketAddress) -> Int? {
        if let i = groups.firstIndex(where: { $0.configured == configured.description }) { return i }
        guard configured.port != 0 else { return nil }
        return groups.firstIndex { $0.bound == resolved.description }
    }
}

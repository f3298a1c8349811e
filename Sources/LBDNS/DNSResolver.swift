import CCAres
import CLibUV
import LBUV

#if canImport(Glibc)
    import Glibc
#endif

/// The record types lb asks for.
public enum DNSQueryType: String, Sendable {
    case a = "A", aaaa = "AAAA", srv = "SRV"

    var code: Int32 {
        switch self {
        case .a: lb_ares_type_a()
        case .aaaa: lb_ares_type_aaaa()
        case .srv: lb_ares_type_srv()
        }
    }
}

/// Why a query has no usable answer, by kind: what the source counts and logs.
public enum DNSFailureKind: String, CaseIterable, Sendable {
    /// The name does not exist (NXDOMAIN).
    case nxdomain
    /// The name exists but has no record of the type asked (NOERROR, empty answer).
    case noData = "no_data"
    case servfail
    case refused
    case timeout
    case connectionRefused = "connection_refused"
    /// An answer that could not be read (c-ares's EBADRESP, FORMERR, or this module's parser).
    case malformed
    /// Anything else c-ares reports (NOTIMP, out of memory, a bad name).
    case other
}

public struct DNSQueryError: Error, Equatable, Sendable, CustomStringConvertible {
    public var kind: DNSFailureKind
    public var detail: String
    public init(_ kind: DNSFailureKind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }
    public var description: String { "\(kind.rawValue): \(detail)" }

    /// The kind for a c-ares status other than success.
    static func kind(ofAresStatus status: Int32) -> DNSFailureKind {
        switch status {
        case ARES_ENOTFOUND: .nxdomain
        case ARES_ENODATA: .noData
        case ARES_ESERVFAIL: .servfail
        case ARES_EREFUSED: .refused
        case ARES_ETIMEOUT: .timeout
        case ARES_ECONNREFUSED: .connectionRefused
        case ARES_EBADRESP, ARES_EFORMERR: .malformed
        default: .other
        }
    }
}

/// A c-ares channel driven by a libuv loop: c-ares opens its sockets and tells us (`ARES_OPT_SOCK_STATE_CB`) which
/// to watch; each gets a `LoopPoll`, whose readiness goes to `ares_process_fd`; one `LoopTimer`, re-armed from
/// `ares_timeout` after every call into c-ares, drives its retries and timeouts. Nothing blocks the loop.
///
/// Thread: the loop's, for every call and every callback. `close()` before the loop closes: it destroys the
/// channel (c-ares closes its sockets, whose polls close first) and the timer.
public final class DNSResolver {
    /// One query in flight; c-ares holds its one retain until `AresCallbacks.queryDone`.
    final class PendingQuery {
        weak var resolver: DNSResolver?
        let done: (Result<DNSMessage, DNSQueryError>) -> Void
        let label: String

        init(resolver: DNSResolver, label: String, done: @escaping (Result<DNSMessage, DNSQueryError>) -> Void) {
            self.resolver = resolver
            self.label = label
            self.done = done
        }

        func finish(status: Int32, answer: [UInt8]) {
            // Queries cancelled by `close()` answer no one: their owner has stopped.
            guard let resolver, !resolver.isClosed else { return }
            resolver.finished(self, status: status, answer: answer)
        }
    }

    private let loop: EventLoop
    private var channel: ares_channel?
    private var polls: [Int32: LoopPoll] = [:]
    private var timer: LoopTimer?
    private(set) var isClosed = false
    /// How deep we are in calls into c-ares: the channel must not be destroyed from inside one of its callbacks.
    private var depth = 0
    private var destroyWhenOut = false

    /// `servers`: the resolvers to ask, as `IP:PORT` (IPv6 in brackets); empty: the system's
    /// (`/etc/resolv.conf`). `timeoutMs`: how long the first try waits for an answer; c-ares tries each
    /// server `tries` times, doubling the wait after each round. Throws `SetupError` when c-ares cannot start or
    /// refuses a server.
    public init(loop: EventLoop, servers: [String], timeoutMs: UInt64, tries: Int = 2) throws(SetupError) {
        self.loop = loop
        let status = ares_library_init(ARES_LIB_INIT_ALL)
        guard status == ARES_SUCCESS else { throw SetupError("c-ares: \(Self.text(status))") }
        var options = ares_options()
        options.sock_state_cb = AresCallbacks.socketState
        options.timeout = Int32(clamping: timeoutMs)
        options.tries = Int32(max(1, tries))
        // NOCHECKRESP: without it c-ares swallows a SERVFAIL or REFUSED answer, retries, and reports "could not
        // contact DNS servers", the status of an unreachable server; lb counts and logs each kind as what it
        // is. ROTATE: each query starts at the next resolver, so one that keeps failing that way does not hide
        // the others from every query (timeouts and refused connections still move to the next resolver within
        // a query).
        options.flags = ARES_FLAG_NOCHECKRESP
        let mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_ROTATE
        // The resolver outlives the channel (`close()` destroys it), so c-ares borrows it unretained.
        options.sock_state_cb_data = Unmanaged.passUnretained(self).toOpaque()
        var made: ares_channel?
        let initStatus = ares_init_options(&made, &options, mask)
        guard initStatus == ARES_SUCCESS, let made else {
            ares_library_cleanup()
            throw SetupError("c-ares: cannot start a resolver: \(Self.text(initStatus))")
        }
        channel = made
        if !servers.isEmpty {
            let set = ares_set_servers_ports_csv(made, servers.joined(separator: ","))
            guard set == ARES_SUCCESS else {
                ares_destroy(made)
                channel = nil
                ares_library_cleanup()
                throw SetupError("c-ares: the resolvers \(servers.joined(separator: ",")): \(Self.text(set))")
            }
        }
        timer = LoopTimer(loop: loop) { [unowned self] in self.timedOut() }
    }

    /// Asks for `type` records of `name` (as given: no search domains). `done` is called once, on the loop, with
    /// the parsed answer or why there is none; never after `close()`.
    public func query(
        _ name: String, _ type: DNSQueryType, done: @escaping (Result<DNSMessage, DNSQueryError>) -> Void
    ) {
        guard let channel, !isClosed else { return }
        let pending = PendingQuery(resolver: self, label: "\(type.rawValue) \(name)", done: done)
        let arg = Unmanaged.passRetained(pending).toOpaque()
        enter()
        ares_query(channel, name, lb_ares_class_in(), type.code, AresCallbacks.queryDone, arg)
        leave()
    }

    /// Cancels every query (their callbacks are not called), closes the channel's sockets and the timer.
    /// Idempotent; safe from inside a query's callback (the channel goes once c-ares has returned).
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        if depth > 0 {
            destroyWhenOut = true
        } else {
            destroy()
        }
    }

    private func destroy() {
        if let channel {
            self.channel = nil
            ares_destroy(channel)  // calls socketStateChanged(…, false, false) for each socket still open
            ares_library_cleanup()
        }
        for poll in polls.values { poll.close() }
        polls = [:]
        timer?.close()
        timer = nil
    }

    // MARK: from the callbacks

    func socketStateChanged(_ socket: Int32, readable: Bool, writable: Bool) {
        if !readable && !writable {
            // c-ares closes the socket right after this: libuv must stop polling it first.
            polls.removeValue(forKey: socket)?.close()
            return
        }
        if polls[socket] == nil {
            do {
                polls[socket] = try LoopPoll(loop: loop, socket: socket) { [unowned self] readiness in
                    self.ready(socket, readiness)
                }
            } catch {
                // Not pollable: the query on it times out through `ares_timeout` and fails as a timeout.
                return
            }
        }
        polls[socket]?.watch(readable: readable, writable: writable)
    }

    func finished(_ pending: PendingQuery, status: Int32, answer: [UInt8]) {
        if status == ARES_SUCCESS {
            do {
                pending.done(.success(try DNSMessage.parse(answer)))
            } catch {
                pending.done(.failure(DNSQueryError(.malformed, "\(pending.label): \(error)")))
            }
        } else {
            let kind = DNSQueryError.kind(ofAresStatus: status)
            pending.done(.failure(DNSQueryError(kind, "\(pending.label): \(Self.text(status))")))
        }
    }

    private func ready(_ socket: Int32, _ readiness: LoopPoll.Readiness) {
        guard let channel, !isClosed else { return }
        let error = readiness.error != nil
        enter()
        ares_process_fd(
            channel, readiness.readable || error ? socket : ARES_SOCKET_BAD,
            readiness.writable || error ? socket : ARES_SOCKET_BAD)
        leave()
    }

    private func timedOut() {
        guard let channel, !isClosed else { return }
        enter()
        ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD)
        leave()
    }

    private func enter() { depth += 1 }

    /// After each call into c-ares: destroy the channel if a callback closed it, else re-arm the timer for
    /// c-ares's next deadline (or stop it when no query waits).
    private func leave() {
        depth -= 1
        guard depth == 0 else { return }
        if destroyWhenOut {
            destroyWhenOut = false
            destroy()
            return
        }
        guard let channel, let timer else { return }
        var storage = timeval()
        if let next = ares_timeout(channel, nil, &storage) {
            // Rounded up: a timer that fires a little early finds nothing expired and waits a whole turn more.
            let ms = UInt64(max(0, next.pointee.tv_sec)) * 1000 + UInt64(max(0, next.pointee.tv_usec) + 999) / 1000
            timer.start(timeout: ms)
        } else {
            timer.stop()
        }
    }

    static func text(_ status: Int32) -> String { String(cString: ares_strerror(status)) }
}

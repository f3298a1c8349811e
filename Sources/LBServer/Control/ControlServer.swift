import CLibUV
import Foundation
import LBUV
import Logging

/// The control socket of a running lb-server: a Unix stream socket on the control loop, owner-only (mode 0600,
/// and the peer's uid must be ours or root's), answering `ControlRequest`s through `handler`. Nothing here
/// blocks: replies are queued writes, and the one message with descriptors is a single non-blocking sendmsg.
///
/// The socket file: a fresh start binds `path` itself (refusing when a live lb-server answers there, removing a
/// stale file). A successor binds a temporary name beside it and `install()`s it over `path` once it serves,
/// so the path always leads to a process that can answer. A shutdown that is not a hand-off unlinks the file
/// if it is still this socket (same inode, compared while this socket still holds it, so the number cannot
/// have been reused); after a hand-off the path belongs to the successor and is left alone.
///
/// Threads: control loop only.
final class ControlServer {
    let path: String
    private let loop: EventLoop
    private let logger: Logger
    private var listener: LocalSocketServer?
    /// Where the socket is bound now: `path`, or the temporary name until `install()`.
    private var boundPath: String
    private var inode: ino_t = 0
    private var sessions: [ObjectIdentifier: ControlSession] = [:]
    var handler: (ControlRequest, ControlSession) -> Void = { _, session in
        session.reply(ControlMessage.failure("not ready"))
    }

    /// Binds the control socket. `temporary`: bind `PATH.<pid>` and wait for `install()` (a successor).
    /// Throws with a message an operator can act on: another instance answers there, the path is not a socket,
    /// the directory is missing or not writable.
    init(loop: EventLoop, path: String, temporary: Bool, logger: Logger) throws(SetupError) {
        self.loop = loop
        self.path = path
        self.logger = logger
        boundPath = temporary ? "\(path).\(getpid())" : path
        if !temporary { try Self.clearStale(path) }
        try? FileManager.default.removeItem(atPath: boundPath)  // a leftover temporary name of a crashed successor
        let server = try LocalSocketServer(loop: loop, path: boundPath)
        listener = server
        chmod(boundPath, 0o600)
        var st = stat()
        if stat(boundPath, &st) == 0 { inode = st.st_ino }
        server.onAccept = { [unowned self] server in self.accept(from: server) }
    }

    /// A socket file at `path` with a live lb-server behind it is an error; a stale one (nobody answers) is removed.
    private static func clearStale(_ path: String) throws(SetupError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw SetupError("control socket \(path) exists and is not a socket; remove it or choose another path")
        }
        let fd = lb_unix_connect(path)
        if fd >= 0 {
            Glibc.close(fd)
            throw SetupError(
                "another lb-server answers on control socket \(path); stop it, or replace it with --upgrade")
        }
        unlink(path)
    }

    /// Successor, once it serves: moves the socket from its temporary name to `path` (atomically replacing the
    /// previous process's socket file). Throws when the rename fails; the socket then keeps its temporary name.
    func install() throws(SetupError) {
        guard boundPath != path else { return }
        guard rename(boundPath, path) == 0 else {
            throw SetupError("cannot move control socket \(boundPath) to \(path): \(String(cString: strerror(errno)))")
        }
        boundPath = path
    }

    private func accept(from server: LocalSocketServer) {
        let conn = LocalSocketConnection(loop: loop)
        guard server.accept(into: conn) else { return }
        let me = geteuid()
        guard let peer = conn.peer, peer.uid == me || peer.uid == 0 else {
            logger.warning("control socket: connection from another user refused", metadata: [
                "uid": "\(conn.peer.map { String($0.uid) } ?? "?")",
            ])
            conn.close()
            return
        }
        let session = ControlSession(connection: conn, peerPID: peer.pid)
        let id = ObjectIdentifier(session)
        sessions[id] = session
        session.onRequest = { [unowned self] request, session in self.handler(request, session) }
        conn.onClose = { [unowned self] in
            session.didClose()
            self.sessions[id] = nil
        }
        conn.startReading()
    }

    /// Stops accepting new control connections; open sessions go on (their answers may still be due).
    /// `removeFile`: unlink the socket file first if it is still this socket's.
    func stopListening(removeFile: Bool) {
        guard let listener else { return }
        if removeFile {
            var st = stat()
            if stat(boundPath, &st) == 0, st.st_ino == inode { unlink(boundPath) }
        }
        listener.close()
        self.listener = nil
    }

    /// Stops listening and closes every session: the loop can end. The file stays (see `stopListening`).
    func close() {
        stopListening(removeFile: false)
        for s in sessions.values { s.connection.close() }
    }
}

/// One connection to the control socket: reads request lines and hands each to `onRequest`; `reply` answers.
/// Requests on one connection are answered in order only if the handler answers before the next arrives
/// (the clients send one request and wait), which every request except `upgrade` does at once.
final class ControlSession {
    let connection: LocalSocketConnection
    /// The peer's process id (SO_PEERCRED): how a successor is recognised.
    let peerPID: Int32
    private var lines = ControlLineBuffer()
    private(set) var isClosed = false
    var onRequest: (ControlRequest, ControlSession) -> Void = { _, _ in }
    /// Called once when the connection has closed (the peer went away, or we closed it).
    var onClose: () -> Void = {}

    init(connection: LocalSocketConnection, peerPID: Int32) {
        self.connection = connection
        self.peerPID = peerPID
        connection.onRead = { [unowned self] bytes in self.received(bytes) }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        lines.append(bytes)
        do throws(ControlError) {
            while let line = try lines.nextLine() {
                guard !line.isEmpty else { continue }
                let request: ControlRequest
                do throws(ControlError) {
                    request = try ControlRequest(try ControlMessage.decode(line))
                } catch {
                    reply(ControlMessage.failure(error.description))
                    continue
                }
                onRequest(request, self)
                if isClosed { return }
            }
        } catch {
            reply(ControlMessage.failure(error.description))
            connection.closeAfterWrites()
        }
    }

    /// Sends one answer line, with `descriptors` attached when given. Returns false when the descriptors could
    /// not be sent (an error answer went instead). Ignored once closed.
    @discardableResult
    func reply(_ object: [String: Any], descriptors: [Int32] = []) -> Bool {
        guard !isClosed else { return false }
        let line = ControlMessage.encode(object)
        if descriptors.isEmpty {
            connection.write(line)
            return true
        }
        if connection.send(line, descriptors: descriptors) { return true }
        connection.write(ControlMessage.encode(ControlMessage.failure("could not send the listening sockets")))
        return false
    }

    func didClose() {
        isClosed = true
        let done = onClose
        onClose = {}
        done()
    }
}

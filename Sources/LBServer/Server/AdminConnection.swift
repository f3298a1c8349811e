import LBHTTP
import LBUV

/// One admin client connection: reads a request (body up to 64 KiB), answers, keeps alive if asked.
/// Control loop only. A body over the limit is answered 413 and the connection closed: a declared
/// Content-Length over it is refused by the parser before any body byte is read, a chunked one when the
/// running total crosses it.
final class AdminConnection: TCPConnection, ListLinked {
    unowned let admin: AdminServer
    var listPrev: AdminConnection?
    var listNext: AdminConnection?
    var inList = false
    var parser: HTTPParser
    private var body: [UInt8] = []
    static let maxBody = 64 * 1024
    /// Answers go out in request order even when a later one is ready first (a write through etcd waits for
    /// etcd): each request takes the next slot, and answers wait in `ready` until every earlier one is out.
    private var nextSlot = 0
    private var nextToWrite = 0
    private var ready: [Int: (response: AdminResponse, close: Bool)] = [:]

    init(admin: AdminServer) {
        self.admin = admin
        parser = HTTPParser(kind: .request, limits: HTTPLimits(maxBodyBytes: AdminConnection.maxBody))
        super.init(loop: admin.server.loop)
    }

    override func didRead(_ bytes: UnsafeRawBufferPointer) {
        var pos = 0
        while !isClosing {
            switch parser.next(bytes, &pos) {
            case .needMore:
                return
            case .head:
                body.removeAll()
            case .body(let r):
                // The parser's maxBodyBytes already refused anything over maxBody (413 below).
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[r]))
            case .end:
                respond()
            case .error(let e):
                let message = e.status == 413 ? AdminConnection.tooLargeMessage : "malformed HTTP request: \(e)"
                write(AdminError(e.status, message).response, close: true)
                return
            }
        }
    }

    private func respond() {
        let head = parser.head
        let target = String(decoding: head.bytes[head.target], as: UTF8.self)
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "")
        let query = parts.count > 1 ? String(parts[1]) : ""
        let auth = head.value(named: "authorization".utf8).map { head.string($0) }
        // For the paths that show counters every worker copies its own on its loop first, and the handler reads
        // only that copy (`AdminRoute.readsCounters`).
        let method = head.method
        let keepAlive = head.keepAlive
        let requestBody = body
        let slot = nextSlot
        nextSlot += 1
        let handle = { [self] in
            admin.handle(method: method, path: path, query: query, body: requestBody, authorization: auth) {
                [self] response in
                ready[slot] = (response, !keepAlive)
                writeReady()
            }
        }
        if AdminRoute.match(path)?.readsCounters ?? false {
            admin.server.collectStats { [self] snapshot in
                admin.stats = snapshot
                handle()
            }
        } else {
            handle()
        }
        body.removeAll()
    }

    /// Writes the answers that are next in order.
    private func writeReady() {
        while !isClosing, let next = ready.removeValue(forKey: nextToWrite) {
            nextToWrite += 1
            write(next.response, close: next.close)
        }
    }

    override func didClose() { admin.connectionClosed(self) }

    static let tooLargeMessage = "request body over \(maxBody) bytes"

    private func write(_ response: AdminResponse, close: Bool) {
        let payload = Array(response.body.utf8)
        let status = response.status
        var headText = "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\n"
        headText += "Content-Type: \(response.contentType)\r\n"
        headText += "Content-Length: \(payload.count)\r\nCache-Control: no-store\r\n"
        for (name, value) in response.headers { headText += "\(name): \(value)\r\n" }
        headText += close ? "Connection: close\r\n\r\n" : "\r\n"
        append(Array(headText.utf8))
        append(payload)
        if close { closeAfterFlush() } else { flush() }
    }
}

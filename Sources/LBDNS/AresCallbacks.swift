import CCAres

// Every C callback c-ares calls lives in this file. Each is capture-free, recovers its Swift owner from the
// pointer c-ares hands back and calls one named method. Nothing else in LBDNS is called from C.

enum AresCallbacks {
    /// A socket of the channel opened, changed what it waits for, or is about to close (both flags 0). The
    /// resolver is borrowed: the channel, destroyed only by `DNSResolver.close()`, never outlives it.
    static let socketState: ares_sock_state_cb = { data, socket, readable, writable in
        let resolver = Unmanaged<DNSResolver>.fromOpaque(data!).takeUnretainedValue()
        resolver.socketStateChanged(socket, readable: readable != 0, writable: writable != 0)
    }

    /// A query ended: answered, failed, or cancelled by `ares_destroy`. c-ares calls this exactly once per query,
    /// so the pending query's one retain (taken in `DNSResolver.query`) is released here.
    static let queryDone: ares_callback = { arg, status, _, answer, length in
        let pending = Unmanaged<DNSResolver.PendingQuery>.fromOpaque(arg!).takeRetainedValue()
        let bytes = answer.map { Array(UnsafeBufferPointer(start: $0, count: Int(max(0, length)))) } ?? []
        pending.finish(status: status, answer: bytes)
    }
}

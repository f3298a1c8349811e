import LBHTTP

/// What an HTTP/1.1 client connection holds only while it has a request to read or answer: the parser, the
/// exchange, the action list, unconsumed input, the routing and the upstream. A connection takes one from its
/// worker when a request's first bytes arrive and gives it back as soon as the response is complete and nothing
/// is left to parse, so an idle keep-alive connection (and an HTTP/2 one, which has its own per-stream state)
/// holds none of it. The worker keeps the states given back (`Worker.takeRequestState`), buffers included, so
/// in the steady state a request allocates nothing and the next one on the same worker reuses warm memory.
final class RequestState {
    var parser: HTTPParser
    var exchange: Exchange
    /// The actions of the event being handled, performed in order (reused: no allocation per event).
    var actions = ActionQueue()
    /// Unconsumed input, kept while the current exchange cannot take it.
    var pending: [UInt8] = []
    /// Set by an action that lets the parser read on; an upstream event then replays `pending`.
    var resumeInput = false
    /// The upstream is paused because this client's write queue is over the high-water mark (a slow reader).
    var upstreamPausedForClient = false
    var routing: RoutingState?
    var upstream: UpstreamConnection?
    var upstreamSlot: WorkerBackend?
    /// The backend whose queue this request waits in (`max_connections`), and its entry's ticket.
    var queuedSlot: WorkerBackend?
    var queueTicket: UInt64 = 0
    var keyHash: UInt64 = 0
    var outgoingHead: [UInt8] = []
    /// Storage for the client's write queue: lent to the connection's stream (`ByteStream.out`) while the state is
    /// held, and taken back with it when the queue is empty, so an idle connection keeps no write buffer either.
    var writeBuffer: [UInt8] = []
    /// Loop time (ms) when the first byte of the head being read arrived, for the access-log line of a
    /// rejected head: the loop's cached clock, so the data path pays no clock read for it.
    var headStartMs: UInt64 = 0

    init(settings: ProxySettings) {
        parser = HTTPParser(kind: .request, limits: settings.limits)
        exchange = Exchange(retries: settings.retries)
    }

    deinit { actions.deallocate() }

    /// Nothing of a request is under way: the response is complete, no byte of a next head is read or held, and
    /// no upstream, queue entry or action refers to this state. Only then may the connection give it back.
    var isQuiet: Bool {
        exchange.isIdle && parser.isBetweenMessages && pending.isEmpty && upstream == nil && queuedSlot == nil
            && !resumeInput && actions.count == 0
    }

    /// Back to the state of a new connection's, keeping buffer capacity up to `keptBufferBytes` each.
    func makeSpare() {
        parser.reset()
        if parser.head.bytes.capacity > Self.keptBufferBytes { parser.dropHeadBuffers() }
        exchange.reset()
        actions.removeAll()
        pending.removeAll(keepingCapacity: pending.capacity <= Self.keptBufferBytes)
        resumeInput = false
        upstreamPausedForClient = false
        routing = nil
        upstream = nil
        upstreamSlot = nil
        queuedSlot = nil
        queueTicket = 0
        keyHash = 0
        outgoingHead.removeAll(keepingCapacity: outgoingHead.capacity <= Self.keptBufferBytes)
        writeBuffer.removeAll(keepingCapacity: writeBuffer.capacity <= Self.keptBufferBytes)
        headStartMs = 0
    }

    /// What a spare state keeps of each buffer: a typical head.
    static let keptBufferBytes = 16 * 1024
}

/// What the carrying connection does, in the order given.
enum ExchangeAction: Equatable {
    /// Choose a candidate not in `tried` and answer with `picked` + `upstreamReady` (pooled connection) or
    /// `picked` and a connect, or `noCandidate`.
    case pick
    /// `HTTP/1.1 100 Continue` to the client.
    case writeContinue
    /// The request head to the upstream; the body (if any) follows as it is read.
    case sendRequestHead
    /// The request's chunked body ended: its last chunk to the upstream.
    case sendLastChunk
    /// The backend's interim (1xx) response head to the client.
    case writeInterim
    /// The backend's response head arrived: count it for `server` (status, response time).
    case responseStarted(server: Int)
    /// The backend's response head to the client.
    case writeResponseHead(keepAlive: Bool, chunked: Bool)
    /// The response's re-framed chunked body ended: its last chunk to the client.
    case endChunkedResponse
    /// The exchange is done with its upstream: back to the pool when `reusable`, else closed.
    case releaseUpstream(reusable: Bool)
    /// The upstream is closed mid-exchange (never pooled), if there is one.
    case dropUpstream
    /// Passive health: one success or failure of `server`.
    case passive(server: Int, success: Bool)
    case countNoServer
    case countRetry(server: Int)
    case countRedispatch(server: Int)
    /// A response the proxy generates; `close` says it carries `Connection: close`.
    case respond(status: Int, close: Bool)
    /// The access-log line and stats of an exchange, once, however it ended.
    case log(TerminationCause)
    /// The access-log line of a head that was rejected before any exchange began.
    case logRejectedHead(status: Int)
    /// Both directions are complete: read the next request when `keepAlive`, else close once written.
    case finished(keepAlive: Bool)
    case closeClient(afterFlush: Bool)
    /// A TCP reset (or its equivalent): the client must see the response was cut short.
    case abortClient
    /// Bytes pass through both ways from now on; what the client sent after its upgrade request goes first.
    case startTunnel
    /// The client closed its side of a tunnel: the upstream is let go and both sides close once written.
    case closeTunnel
}

/// Where an exchange appends its actions: a connection's `ActionQueue`, or an array in a test.
protocol ExchangeActionSink {
    mutating func append(_ action: ExchangeAction)
}

extension Array: ExchangeActionSink where Element == ExchangeAction {}

import LBHTTP

/// The retry policy: a pure function, tested as a table.
extension Exchange {
    enum AfterFailure: Equatable {
        /// The keep-alive race: replay on a fresh connection without counting an attempt.
        case replay
        /// Move to the next candidate (bounded by `retries`).
        case retry
        /// Answer the client with the failure.
        case fail
    }

    /// Times one request is sent again to the same server after it shed the connection carrying it.
    static let maxShedReplays = 4

    /// What to do when an upstream failed before any response byte: a request the client could have sent
    /// twice itself (RFC 9110 §9.2.2) whose body we never streamed may go out again. A pooled connection the
    /// backend had closed (closed before any byte) processed nothing, so any such request is replayed.
    ///
    /// A connection the backend shed (`UpstreamFailure.shed`) goes back to the same server, at most
    /// `maxShedReplays` times, for an idempotent request: the shed has just lowered that server's learnt limit,
    /// so the request waits in lb's queue for a connection the server holds instead of failing (with one server
    /// there is nowhere else to go) or moving its key to a server that is as full.
    static func afterFailure(
        _ cause: UpstreamFailure, wasReused: Bool, method: HTTPMethod, hasBody: Bool, requestComplete: Bool,
        attempts: Int, retries: Int, sheds: Int = 0
    ) -> AfterFailure {
        let replayable = !hasBody && requestComplete
        if (cause == .closedBeforeResponse || cause == .shed) && wasReused && replayable { return .replay }
        if cause == .shed && replayable && method.isIdempotent && sheds < maxShedReplays { return .replay }
        if replayable && method.isIdempotent && attempts <= retries { return .retry }
        return .fail
    }
}

extension HTTPMethod {
    /// RFC 9110 §9.2.2: a request the client could have sent twice itself.
    var isIdempotent: Bool {
        switch self {
        case .get, .head, .options, .trace, .put, .delete: return true
        case .post, .patch, .connect, .other: return false
        }
    }
}

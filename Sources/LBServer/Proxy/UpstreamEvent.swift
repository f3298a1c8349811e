/// What an upstream connection tells the exchange it serves, through one entry point.
enum UpstreamEvent {
    /// The new connection is ready for the request head, `nanos` after the connect began.
    case connected(nanos: UInt64)
    /// A response head (interim or final) is in `parser.head`. The owner answers false to refuse it.
    case head
    case body(UnsafeRawBufferPointer)
    /// The response is complete; `reusable` when it was cleanly framed and the connection may serve again.
    case end(reusable: Bool)
    /// Everything one read produced was reported: the owner writes it out now, in one write.
    case readDone
    /// `101 Switching Protocols`: bytes pass through from now on.
    case upgraded
    case tunnelData(UnsafeRawBufferPointer)
    /// The connection could not be set up: nothing was sent. Reported from the close callback.
    case connectFailed(ConnectFailure)
    /// The exchange failed after the head went out. Reported from the close callback.
    case failed(UpstreamFailure)
    /// A tunnel went quiet or its backend side closed. Reported from the close callback.
    case tunnelEnded
    /// The write queue fell below the low-water mark.
    case drained
}

/// Why a new upstream connection never carried a request.
enum ConnectFailure: Equatable {
    /// Refused, unreachable, reset, or closed during the TLS handshake.
    case refused
    case timedOut
    /// The TLS handshake failed: the backend's certificate did not verify, or no protocol or suite was shared.
    case tls
}

/// Why an upstream failed an exchange.
enum UpstreamFailure: Equatable {
    case closedBeforeResponse
    /// Closed before any response byte while the backend was shedding connections: within a second of the
    /// connection's being ready, with at least `WorkerBackend.learnMinimumConnections` of this worker's
    /// connections open to it (`UpstreamConnection.noteBackendClose`). The backend is alive and full, not sick.
    case shed
    case truncated
    case badResponse
    case timeout
}

import LBCore

/// Passive health: the proxy path reports what real traffic saw, lock-free, from any worker thread.
///
/// Contract for the proxy (`ClientConnection` / `UpstreamConnection`), once per attempt at this server
/// (each retry is its own attempt):
/// - call `recordPassiveFailure()` when the attempt failed because of the server: the connect failed or timed
///   out; the server closed or reset the connection before a complete response head; the response head was
///   not valid HTTP (garbage); no response head arrived within `upstream_response`; or the head arrived with
///   a 5xx status (500–599).
/// - call `recordPassiveSuccess()` when a complete, valid response head with a status below 500 arrived.
/// - call neither when the attempt ended because of the client (client went away, request rejected before
///   it was sent) or because the balancer is shutting down.
///
/// When `health_check.passive_failures` consecutive failures are recorded (0 = passive checking off), the
/// server is marked down at once (workers stop picking it on their next lookup) and the active checker
/// must then see `rise` consecutive passes to bring it back. With active checks disabled for the server, the
/// checker still counts one "pass" per interval, so a passive down lasts `rise × interval`.
extension Backend {
    /// See the contract above. Lock-free; any thread. Returns true when this call marked the server down.
    @discardableResult
    func recordPassiveFailure() -> Bool {
        guard health.countPassiveFailure() else { return false }
        setUp(false)
        return true
    }

    /// See the contract above. Lock-free, and writes nothing when the count is already zero; any thread.
    func recordPassiveSuccess() {
        health.countPassiveSuccess()
    }
}

extension Backend {
    /// Starts this server down, as a hot upgrade's predecessor last saw it: no new requests until `rise`
    /// passed checks bring it up. Control loop, before the server is published.
    func startDown(now: UInt64) {
        health.withRecord { record in
            record.state = HealthState(rise: record.state.rise, fall: record.state.fall, startUp: false, now: now)
        }
        setUp(false)
    }
}

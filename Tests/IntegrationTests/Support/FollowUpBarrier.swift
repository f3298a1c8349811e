import Foundation

/// What a `SpyBackend` recorded after a `SpyBackend.Mark`, less one follow-up request (see `SpyBackend.followUp`).
struct SpyArrivals: CustomStringConvertible {
    /// Complete requests (as the spy frames them), in the order they completed.
    var requests: [[UInt8]]
    /// Every byte, the new bytes of each connection concatenated in accept order.
    var bytes: [UInt8]
    /// Connections accepted, counting one that carried only the follow-up as none.
    var connections: Int

    var isEmpty: Bool { requests.isEmpty && bytes.isEmpty && connections == 0 }

    var description: String {
        "\(requests.count) request(s), \(connections) new connection(s), \(bytes.count) byte(s): \(bytes.debugText)"
    }
}

extension SpyBackend {
    /// Waits for proof that the proxy is done with everything sent before this call, and returns what reached the
    /// spy since `mark` apart from that proof. For "nothing was forwarded" checks, instead of a fixed sleep.
    ///
    /// The proof: a well-formed `GET` for a fresh path, sent on a new client connection (so a rejected or closed
    /// earlier one does not matter), answered, and recorded by the spy. The proxy took in the earlier exchange
    /// first, so whatever it forwarded of it (a connect, a head, body bytes) left before the follow-up did; by the
    /// time the spy holds the follow-up, it holds those too. With several workers the follow-up may be served by
    /// another worker than the earlier exchange; the earlier one had already answered the client, so this still
    /// holds unless that worker stalls between answering and forwarding.
    ///
    /// Call it only once the earlier exchange has visibly ended for the client (a response read, the connection
    /// closed by the proxy), and only with a spy that answers `GET`s for unknown paths.
    /// - Throws: `HarnessError.conditionNotMet` if the spy never records the follow-up; socket/HTTP errors.
    func followUp(since mark: Mark, proxyPort: Int, timeout: TimeInterval = 5) throws -> SpyArrivals {
        let path = "/follow-up-\(UUID().uuidString.prefix(8))"
        let connection = try RawHTTPConnection(port: proxyPort, timeout: timeout)
        defer { connection.close() }
        try connection.send("GET \(path) HTTP/1.1\r\nHost: follow-up\r\n\r\n")
        _ = try connection.readResponse()
        try eventually(timeout: timeout, "spy to record the follow-up GET \(path): \(receivedBytes.debugText)") {
            requests.dropFirst(mark.requestCount).contains { $0.starts(with: Array("GET \(path) ".utf8)) }
        }
        return arrivals(since: mark, besides: path)
    }
}

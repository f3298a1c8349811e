/// The side an upstream serves (a client connection today; an HTTP/2 stream could be another).
protocol UpstreamOwner: AnyObject {
    /// Returns false only to refuse a `.head`. Every other event's answer is ignored.
    func upstreamEvent(_ up: UpstreamConnection, _ event: UpstreamEvent) -> Bool
}

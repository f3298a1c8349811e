import LBHTTP

/// What the exchange needs of a request head.
struct RequestFacts: Equatable {
    var method = HTTPMethod.get
    var versionMinor = 1
    var keepAlive = true
    var chunked = false
    var hasBody = false
    var expectContinue = false
    var isUpgrade = false

    init() {}

    init(_ head: HTTPHead) {
        method = head.method
        versionMinor = head.versionMinor
        keepAlive = head.keepAlive
        chunked = head.framing == .chunked
        hasBody = head.framing != .none && head.framing != .contentLength(0)
        expectContinue = head.expectContinue
        isUpgrade = head.isUpgrade
    }
}

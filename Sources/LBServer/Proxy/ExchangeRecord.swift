/// Timings, status, bytes and server of one exchange: stats and the access log are written from it.
struct ExchangeRecord: Equatable {
    /// Clock nanoseconds (0 when nothing measures time) when the head arrived and when it went upstream.
    var start: UInt64 = 0
    var sentAt: UInt64 = 0
    var connectNanos: UInt64?
    var responseNanos: UInt64?
    var status = 0
    var bytes: UInt64 = 0
    /// The last server tried, -1 for none.
    var server = -1
}

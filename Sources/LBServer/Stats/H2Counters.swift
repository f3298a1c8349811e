/// One worker's HTTP/2 counters (loop thread only; summed across workers on read).
struct H2Counters {
    /// Client connections that spoke HTTP/2 (ALPN `h2`, or the h2c preface), and those open now.
    var connections: UInt64 = 0
    var open = 0
    /// Streams that carried a request (each one exchange), and streams refused before any exchange began
    /// (over the concurrency limit, or while their reset backend requests were still being torn down).
    var streams: UInt64 = 0
    var refusedStreams: UInt64 = 0
    /// GOAWAY frames sent, by `H2GoawayReason.rawValue`, and received from clients.
    var goaways = [UInt64](repeating: 0, count: H2GoawayReason.allCases.count)
    var goawaysReceived: UInt64 = 0
    /// RST_STREAM frames sent, by `H2ResetReason.rawValue`, and received from clients.
    var resetsSent = [UInt64](repeating: 0, count: H2ResetReason.allCases.count)
    var resetsReceived: UInt64 = 0

    mutating func add(_ o: H2Counters) {
        connections &+= o.connections
        open += o.open
        streams &+= o.streams
        refusedStreams &+= o.refusedStreams
        for i in goaways.indices { goaways[i] &+= o.goaways[i] }
        goawaysReceived &+= o.goawaysReceived
        for i in resetsSent.indices { resetsSent[i] &+= o.resetsSent[i] }
        resetsReceived &+= o.resetsReceived
    }
}

/// Why lb sent a GOAWAY.
enum H2GoawayReason: Int, CaseIterable {
    /// Graceful shutdown: in-flight streams finish.
    case drain
    case idleTimeout
    /// A request's header block did not complete within `client_header`.
    case headerTimeout
    /// Too many of one kind of frame in a second (ENHANCE_YOUR_CALM): see `H2FloodGuard`.
    case resetFlood, emptyFrameFlood, pingFlood, settingsFlood, refusedStreamFlood
    /// A header block continued past nghttp2's CONTINUATION cap: ENHANCE_YOUR_CALM.
    case continuationFlood
    /// nghttp2's own limits (its stream reset rate, CONTINUATION cap, queued ACKs): ENHANCE_YOUR_CALM.
    case libraryLimit
    /// The client broke the protocol (a connection error): PROTOCOL_ERROR, COMPRESSION_ERROR, ...
    case protocolError

    var name: String {
        switch self {
        case .drain: return "drain"
        case .idleTimeout: return "idle_timeout"
        case .headerTimeout: return "header_timeout"
        case .resetFlood: return "reset_flood"
        case .emptyFrameFlood: return "empty_frame_flood"
        case .pingFlood: return "ping_flood"
        case .settingsFlood: return "settings_flood"
        case .refusedStreamFlood: return "refused_stream_flood"
        case .continuationFlood: return "continuation_flood"
        case .libraryLimit: return "library_limit"
        case .protocolError: return "protocol_error"
        }
    }
}

/// Why lb reset a stream, by the error code it sent.
enum H2ResetReason: Int, CaseIterable {
    /// NO_ERROR: the response is complete and the rest of the request is not wanted (RFC 9113 §8.1).
    case noError
    /// PROTOCOL_ERROR: a malformed request (RFC 9113 §8.1.1).
    case protocolError
    /// REFUSED_STREAM: over the concurrency limit; nothing was processed.
    case refused
    /// INTERNAL_ERROR: the backend failed after part of the response went out.
    case internalError
    case other

    init(errorCode: UInt32) {
        switch errorCode {
        case 0x0: self = .noError
        case 0x1: self = .protocolError
        case 0x7: self = .refused
        case 0x2: self = .internalError
        default: self = .other
        }
    }

    var name: String {
        switch self {
        case .noError: return "no_error"
        case .protocolError: return "protocol_error"
        case .refused: return "refused_stream"
        case .internalError: return "internal_error"
        case .other: return "other"
        }
    }
}

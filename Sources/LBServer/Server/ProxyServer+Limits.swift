import Foundation
import Logging

extension ProxyServer {
    /// Raises the soft open-file limit to the hard limit (as HAProxy does): each client needs a socket, and so
    /// does each upstream connection. Logs a warning when even the hard limit is below what the config allows.
    static func raiseOpenFileLimit(logger: Logger, needed: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        // Clients plus a margin for upstream connections, listeners, logs and probes.
        let wanted = UInt64(needed) + 1024
        if UInt64(limit.rlim_cur) < wanted {
            logger.warning("open-file limit is low for limits.max_client_connections", metadata: [
                "limit": "\(limit.rlim_cur)", "wanted": "\(wanted)",
            ])
        }
    }
}

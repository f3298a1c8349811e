/// The optional bearer token of the management calls (`admin.token`, or `LB_ADMIN_TOKEN` merged into it by the
/// config layer). GET endpoints stay open; see `AdminRoute.isManagement`.
enum AdminAuth {
    /// Passes when no token is configured, or `authorization` is `Bearer <token>` (scheme case-insensitive,
    /// RFC 9110 §11.1). Throws 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3) otherwise.
    static func check(_ authorization: String?, token: String?) throws(AdminError) {
        guard let token, !token.isEmpty else { return }
        let challenge = [(name: "WWW-Authenticate", value: "Bearer realm=\"lb-admin\"")]
        guard let authorization else {
            throw AdminError(401, "missing Authorization: Bearer <token>", headers: challenge)
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
            constantTimeEqual(Array(parts[1].trimmingSpaces.utf8), Array(token.utf8))
        else {
            throw AdminError(401, "wrong bearer token", headers: challenge)
        }
    }

    /// Compares in time that depends only on `expected.count`, so response timing does not reveal how much
    /// of a guess was right.
    static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var diff: UInt8 = given.count == expected.count ? 0 : 1
        for i in 0..<expected.count {
            diff |= expected[i] ^ (i < given.count ? given[i] : 0)
        }
        return diff == 0
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}

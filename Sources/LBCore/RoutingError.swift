/// Why a routing snapshot could not be built. Thrown only at build time (config load, admin change),
/// never on the data path; each message says what to change.
public enum RoutingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The ring would need `total` points (sum of weight × vnodes), more than `limit`.
    case tooManyPoints(total: Int, limit: Int)
    /// The maglev table size is not a prime, is outside 2...`Maglev.maxTableSize`, or is smaller than the
    /// number of servers with weight > 0.
    case invalidTableSize(Int)
    /// A weight outside 0...`RoutingSnapshot.maxWeight`.
    case invalidWeight(id: String, weight: Int)
    /// Two servers share one id; ids are the routing identity, so they must be unique.
    case duplicateID(String)
    /// `vnodes` must be at least 1.
    case invalidVnodes(Int)
    /// The bounded-load factor must be finite and at least 1.0.
    case invalidBoundedLoadFactor(Double)
    /// Ring probes per key must be within `RoutingConfig.ringProbeRange`.
    case invalidRingProbes(Int)

    public var description: String {
        switch self {
        case .tooManyPoints(let total, let limit):
            return "ring would need \(total) points (sum of weight x vnodes), more than the limit of \(limit); "
                + "lower routing.vnodes or the weights"
        case .invalidTableSize(let size):
            let below = Primes.previous(before: size).map { "\($0)" } ?? "none"
            let above = Primes.next(after: size).map { "\($0)" } ?? "none"
            return "maglev table size \(size) must be a prime between 2 and \(Maglev.maxTableSize) and at least "
                + "the number of servers (ideally 100x it); nearest primes: \(below), \(above)"
        case .invalidWeight(let id, let weight):
            return "server \(id): weight \(weight) is invalid; use 0 (drain) up to \(RoutingSnapshot.maxWeight)"
        case .duplicateID(let id):
            return "server id \(id) appears more than once; give each server a unique id"
        case .invalidVnodes(let n):
            return "routing.vnodes is \(n); it must be at least 1 (160 is the usual ketama value)"
        case .invalidRingProbes(let n):
            let r = RoutingConfig.ringProbeRange
            return "routing.ring_probes is \(n); it must be \(r.lowerBound)-\(r.upperBound) "
                + "(1 = classic ketama, \(RoutingConfig.defaultRingProbes) = default)"
        case .invalidBoundedLoadFactor(let f):
            return "bounded-load factor \(f) is invalid; use a finite value >= 1.0 (e.g. 1.25), or leave it off"
        }
    }
}

/// Small prime helpers for maglev table sizes (trial division: sizes are at most ~6.7e7, so <= 8200 steps).
/// Public so config validation names the same primes the table builder accepts.
public enum Primes {
    public static func isPrime(_ n: Int) -> Bool {
        if n < 2 { return false }
        if n < 4 { return true }
        if n % 2 == 0 || n % 3 == 0 { return false }
        var d = 5
        while d * d <= n {
            if n % d == 0 || n % (d + 2) == 0 { return false }
            d += 6
        }
        return true
    }

    /// The smallest prime above `n`, or nil past the largest maglev table size.
    public static func next(after n: Int) -> Int? {
        var c = max(n + 1, 2)
        while c <= Maglev.maxTableSize {
            if isPrime(c) { return c }
            c += 1
        }
        return nil
    }

    public static func previous(before n: Int) -> Int? {
        var c = min(n - 1, Maglev.maxTableSize)
        while c >= 2 {
            if isPrime(c) { return c }
            c -= 1
        }
        return nil
    }
}

import LBCore

/// Minimal timing helpers: medians over repeated runs, nanoseconds from ContinuousClock.
enum Measure {
    static func nanoseconds(_ d: Duration) -> Double {
        let (s, atto) = d.components
        return Double(s) * 1e9 + Double(atto) / 1e9
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }

    /// Median wall time of `body` in milliseconds over `runs` runs.
    static func medianMilliseconds(runs: Int, _ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<runs { samples.append(nanoseconds(clock.measure(body)) / 1e6) }
        return median(samples)
    }

    /// p50 over `batches` of the per-operation time of `batch(size)`, which performs `size` operations.
    static func p50NanosecondsPerOp(batches: Int, size: Int, _ batch: (Int) -> Void) -> Double {
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<batches { samples.append(nanoseconds(clock.measure { batch(size) }) / Double(size)) }
        return median(samples)
    }

    static func fixed(_ x: Double, _ digits: Int) -> String {
        var p = 1.0
        for _ in 0..<digits { p *= 10 }
        let r = (x * p).rounded() / p
        var s = "\(r)"
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        } else if digits > 0 {
            s += "." + String(repeating: "0", count: digits)
        }
        return s
    }
}

/// Results are folded into this so the optimizer cannot drop the measured work. Single-threaded bench.
enum Sink {
    nonisolated(unsafe) static var value = 0
}

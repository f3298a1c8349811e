/// Ketama-style consistent-hash ring with virtual nodes.
///
/// Each server with weight w gets `w * config.vnodes` points. Point k of a server sits at
/// XXH3-64(utf8(id) + "#" + decimal(k)), so placement depends only on the id and the point number:
/// identical in every process and on every platform, whatever the order of the server list.
/// A key is owned by the first point at or after its mixed hash, wrapping to the first point.
///
/// Candidates walk clockwise from there, skipping servers already returned. "Already returned" is
/// answered without a seen-set: `previousDistance[p]` is the cyclic distance back to the previous point
/// of the same server, and point p at walk offset d is that server's first appearance in the walk iff
/// `previousDistance[p] > d`. So the walk allocates nothing and is O(1) per point.
final class Ring: RoutingAlgorithm {
    /// Hard cap on total points (10 million points ≈ 160 MB of table).
    static let maxPoints = 10_000_000

    let servers: [ServerSpec]
    /// Point positions, ascending.
    let positions: [UInt64]
    /// Server index owning each point.
    let owners: [UInt32]
    /// Cyclic distance to the previous point of the same owner, in 1...count.
    let previousDistance: [UInt32]

    init(servers: [ServerSpec], config: RoutingConfig) throws(RoutingError) {
        guard config.vnodes >= 1 else { throw .invalidVnodes(config.vnodes) }
        var total = 0
        for s in servers {
            let (pts, o1) = s.weight.multipliedReportingOverflow(by: config.vnodes)
            let (sum, o2) = total.addingReportingOverflow(pts)
            if o1 || o2 || sum > Ring.maxPoints {
                throw .tooManyPoints(total: (o1 || o2) ? Int.max : sum, limit: Ring.maxPoints)
            }
            total = sum
        }
        self.servers = servers

        var points: [Point] = []
        points.reserveCapacity(total)
        var buffer: [UInt8] = []
        for (index, server) in servers.enumerated() where server.weight > 0 {
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: server.id.utf8)
            buffer.append(UInt8(ascii: "#"))
            let prefix = buffer.count
            for k in 0..<(server.weight * config.vnodes) {
                buffer.removeSubrange(prefix...)
                Ring.appendDecimal(k, to: &buffer)
                let position = buffer.withUnsafeBytes { Hashes.xxh3_64($0) }
                points.append(Point(position: position, owner: UInt32(index)))
            }
        }
        // Equal positions (astronomically rare) are ordered by owner, i.e. by id: still deterministic.
        Ring.sortPoints(&points)
        positions = points.map(\.position)
        owners = points.map(\.owner)

        // previousDistance: scan the ring twice so every point sees its predecessor across the wrap.
        let count = points.count
        var lastSeen = [Int](repeating: -1, count: servers.count)
        var distance = [UInt32](repeating: UInt32(truncatingIfNeeded: count), count: count)
        for j in 0..<(2 * count) {
            let p = j % count
            let o = Int(points[p].owner)
            if lastSeen[o] >= 0, j >= count { distance[p] = UInt32(j - lastSeen[o]) }
            lastSeen[o] = j
        }
        previousDistance = distance
    }

    struct Point {
        var position: UInt64
        var owner: UInt32

        @inline(__always) static func precedes(_ a: Point, _ b: Point) -> Bool {
            a.position != b.position ? a.position < b.position : a.owner < b.owner
        }
    }

    /// Sorts by (position, owner). Positions are uniform hashes, so one counting pass on the top bits
    /// (about one point per bucket) plus insertion sort inside each bucket is linear time; it keeps a
    /// 100 x 160 ring build well under the 2 ms budget where a comparison sort took most of it.
    static func sortPoints(_ points: inout [Point]) {
        let n = points.count
        guard n > 64 else {
            points.sort(by: Point.precedes)
            return
        }
        let bits = min(22, max(8, UInt64.bitWidth - UInt64(n).leadingZeroBitCount))
        let shift = UInt64(64 - bits)
        var starts = [Int](repeating: 0, count: (1 << bits) + 1)
        for p in points { starts[Int(p.position >> shift) + 1] += 1 }
        for b in 0..<(1 << bits) { starts[b + 1] += starts[b] }
        var sorted = points
        var fill = starts
        for p in points {
            let b = Int(p.position >> shift)
            sorted[fill[b]] = p
            fill[b] += 1
        }
        sorted.withUnsafeMutableBufferPointer { out in
            for b in 0..<(1 << bits) where starts[b + 1] - starts[b] > 1 {
                for i in (starts[b] + 1)..<starts[b + 1] {
                    let p = out[i]
                    var j = i
                    while j > starts[b] && Point.precedes(p, out[j - 1]) {
                        out[j] = out[j - 1]
                        j -= 1
                    }
                    out[j] = p
                }
            }
        }
        points = sorted
    }

    /// Appends the decimal digits of a non-negative integer (no String allocation per point).
    private static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        if value == 0 {
            buffer.append(UInt8(ascii: "0"))
            return
        }
        let start = buffer.count
        var v = value
        while v > 0 {
            buffer.append(UInt8(ascii: "0") + UInt8(v % 10))
            v /= 10
        }
        buffer[start...].reverse()
    }

    /// Index of the first point whose position is >= h, or positions.count if none (branch-free search).
    @inline(__always)
    func lowerBound(_ h: UInt64) -> Int {
        positions.withUnsafeBufferPointer { p in
            var base = 0
            var n = p.count
            guard n > 0 else { return 0 }
            while n > 1 {
                let half = n &>> 1
                base = p[base &+ half] < h ? base &+ half : base
                n &-= half
            }
            return p[base] < h ? base &+ 1 : base
        }
    }

    func makeCursor(mixedHash: UInt64) -> CandidateCursor {
        var c = CandidateCursor(key: mixedHash)
        let start = lowerBound(mixedHash)
        c.position = start == positions.count ? 0 : start
        return c
    }

    @inline(__always)
    func next(_ cursor: inout CandidateCursor) -> Int? {
        let count = owners.count
        return previousDistance.withUnsafeBufferPointer { dist in
            owners.withUnsafeBufferPointer { own in
                while cursor.step < count {
                    var p = cursor.position &+ cursor.step
                    if p >= count { p &-= count }
                    cursor.step &+= 1
                    // First appearance of this owner in the walk: its previous point lies before the start.
                    if Int(dist[p]) >= cursor.step { return Int(own[p]) }
                }
                return nil
            }
        }
    }

    var tableBytes: Int { positions.count * (MemoryLayout<UInt64>.stride + 2 * MemoryLayout<UInt32>.stride) }

    /// Each point owns the arc (previous point, this point]; shares are arc lengths over 2^64.
    func exactShares() -> [Double]? {
        var shares = [Double](repeating: 0, count: servers.count)
        let count = positions.count
        if count == 0 { return shares }
        if count == 1 {
            shares[Int(owners[0])] = 1
            return shares
        }
        for i in 0..<count {
            let previous = positions[i == 0 ? count - 1 : i - 1]
            shares[Int(owners[i])] += Double(positions[i] &- previous) / 18_446_744_073_709_551_616.0
        }
        return shares
    }

    /// Exact for ring-to-ring: sweep the merged boundaries of both rings; each elementary interval
    /// (b[k-1], b[k]] is owned by the first point >= b[k] in each ring.
    func exactMovedFraction(to other: any RoutingAlgorithm) -> Double? {
        guard let other = other as? Ring else { return nil }
        let a = positions
        let b = other.positions
        if a.isEmpty || b.isEmpty { return a.isEmpty && b.isEmpty ? 0 : 1 }
        // Map our server indices to theirs by id, so comparisons are integer compares.
        let map = ServerIndexMap(from: servers, to: other.servers)
        var moved: Double = 0
        var ia = 0
        var ib = 0
        var previous = max(a[a.count - 1], b[b.count - 1])
        while ia < a.count || ib < b.count {
            let boundary: UInt64
            if ib >= b.count || (ia < a.count && a[ia] <= b[ib]) { boundary = a[ia] } else { boundary = b[ib] }
            // Owner of the interval ending at `boundary`: first point >= boundary (wrapping to 0).
            let ownerA = owners[ia < a.count ? ia : 0]
            let ownerB = other.owners[ib < b.count ? ib : 0]
            if map[Int(ownerA)] != Int(ownerB) {
                moved += Double(boundary &- previous) / 18_446_744_073_709_551_616.0
            }
            previous = boundary
            while ia < a.count && a[ia] == boundary { ia += 1 }
            while ib < b.count && b[ib] == boundary { ib += 1 }
        }
        return moved
    }
}

/// Maps server indices of one snapshot to the indices of the servers with the same id in another (-1 = gone).
struct ServerIndexMap {
    private let table: [Int]

    init(from: [ServerSpec], to: [ServerSpec]) {
        var byID: [String: Int] = [:]
        for (i, s) in to.enumerated() { byID[s.id] = i }
        table = from.map { byID[$0.id] ?? -1 }
    }

    subscript(_ i: Int) -> Int { table[i] }
}

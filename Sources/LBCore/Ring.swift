/// Ketama-style consistent-hash ring with virtual nodes, probed from one or more positions per key.
///
/// Each server with weight w gets `w * config.vnodes` points. Point k of a server sits at
/// XXH3-64(utf8(id) + "#" + decimal(k)), so placement depends only on the id and the point number:
/// identical in every process and on every platform, whatever the order of the server list.
///
/// A key is looked up at `config.ringProbes` positions (its mixed hash, then fmix64 of it plus i times the
/// golden ratio); from each, the first point at or after it (wrapping) is found through a bucket index, and
/// the point nearest after its probe wins (ties: the earlier probe). With one probe this is plain ketama.
/// More probes are multi-probe consistent hashing (Appleton and O'Reilly, 2015): a point's share stops
/// being its arc length, which varies like an exponential, and becomes a saturating function of it, so the
/// spread of per-server shares shrinks (at 160 points per server, relative spread 7.9% with one probe,
/// 3.5% with three). It stays monotone: adding a server only adds points, which can only win keys, and
/// removing one only frees the keys its points won; every other key keeps its winning point.
///
/// Candidate k+1 is the key's owner on the ring without the servers of candidates 1...k, so the server a key
/// fails over to (first one down, draining, over its bounded load) is exactly the one that owns the key once
/// that first server is removed: a drain and then a removal move each key once. With one probe that is the
/// clockwise walk from the owner's point, skipping servers already returned, answered without a seen-set:
/// `previousDistance[p]` is the cyclic distance back to the previous point of the same server, and point p at
/// walk offset d is that server's first appearance in the walk iff `previousDistance[p] > d`. With several
/// probes each probe walks on past the returned servers' points (kept in the cursor, up to 8) and the
/// nearest wins again; after 8 candidates the walk continues clockwise from the 8th, skipping those 8.
/// Either way the walk allocates nothing.
final class Ring: RoutingAlgorithm {
    /// Hard cap on total points (10 million points ≈ 160 MB of table).
    static let maxPoints = 10_000_000

    let servers: [ServerSpec]
    /// Positions probed per key, at least 1.
    let probes: Int
    /// Servers with weight > 0, i.e. with points: the number of candidates a walk can return.
    let routableCount: Int
    /// Point positions, ascending.
    let positions: [UInt64]
    /// Server index owning each point.
    let owners: [UInt32]
    /// Cyclic distance to the previous point of the same owner, in 1...count.
    let previousDistance: [UInt32]
    /// Bucket index over the top `64 - bucketShift` bits of a position: `bucketStart[b]` is the first
    /// point whose position's bucket is >= b (one extra entry = count). Positions are uniform hashes and
    /// there are about as many buckets as points, so a lower bound is one index read plus a scan of about
    /// one point, instead of a binary search whose compares mispredict about half the time.
    let bucketStart: [UInt32]
    let bucketShift: UInt64

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
        probes = max(1, config.ringProbes)
        routableCount = servers.reduce(0) { $0 + ($1.weight > 0 ? 1 : 0) }

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
        let bits = min(22, max(1, UInt64.bitWidth - UInt64(max(1, points.count)).leadingZeroBitCount))
        bucketShift = UInt64(64 - bits)
        var starts = [UInt32](repeating: 0, count: (1 << bits) + 1)
        var next = 0
        for b in 0...(1 << bits) {
            while next < points.count && Int(points[next].position >> (64 - UInt64(bits))) < b {
                next += 1
            }
            starts[b] = UInt32(next)
        }
        bucketStart = starts
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

    /// Index of the first point whose position is >= h, or p.count if none: through the bucket index.
    @inline(__always)
    static func lowerBound(
        _ p: UnsafeBufferPointer<UInt64>, _ starts: UnsafeBufferPointer<UInt32>, _ shift: UInt64,
        _ h: UInt64
    ) -> Int {
        let b = Int(truncatingIfNeeded: h &>> shift)
        var i = Int(truncatingIfNeeded: starts[b])
        let end = Int(truncatingIfNeeded: starts[b &+ 1])
        while i < end && p[i] < h { i &+= 1 }
        return i
    }

    /// Probe i > 0 of a key: a fixed bijective remix, so probes are independent uniform positions.
    @inline(__always)
    static func probe(_ mixedHash: UInt64, _ i: Int) -> UInt64 {
        Hashes.fmix64(mixedHash &+ UInt64(truncatingIfNeeded: i) &* 0x9e37_79b9_7f4a_7c15)
    }

    func makeCursor(mixedHash: UInt64) -> CandidateCursor {
        var c = CandidateCursor(key: mixedHash)
        if !positions.isEmpty { c.position = nearestPoint(c, skippingReturned: false) }
        return c
    }

    /// The point nearest after any of the key's probes (ties: the earlier probe), among servers the cursor has
    /// not returned when `skippingReturned`; without it, the key's owner. Distances wrap, so a probe past the
    /// last point continues at the first. Some server must be left unreturned, so each probe's walk past the
    /// returned ones stops within one turn. `skippingReturned` is a constant at each call, so inlined into
    /// `makeCursor` the lookup carries no skip test (bench-core ring 100: 24.5 ns, 24.2 before sharing this).
    @inline(__always)
    private func nearestPoint(_ cursor: CandidateCursor, skippingReturned: Bool) -> Int {
        positions.withUnsafeBufferPointer { pos in
            bucketStart.withUnsafeBufferPointer { starts in
                let count = pos.count
                /// The first point at or after `probe` (wrapping), past the returned servers' points.
                @inline(__always) func point(after probe: UInt64) -> Int {
                    var p = Ring.lowerBound(pos, starts, bucketShift, probe)
                    if p == count { p = 0 }
                    if skippingReturned {
                        owners.withUnsafeBufferPointer { own in
                            while cursor.hasReturned(own[p]) {
                                p &+= 1
                                if p == count { p = 0 }
                            }
                        }
                    }
                    return p
                }
                var best = point(after: cursor.key)
                var bestDistance = pos[best] &- cursor.key
                var i = 1
                while i < probes {
                    let probe = Ring.probe(cursor.key, i)
                    let q = point(after: probe)
                    let distance = pos[q] &- probe
                    if distance < bestDistance {
                        bestDistance = distance
                        best = q
                    }
                    i &+= 1
                }
                return best
            }
        }
    }

    @inline(__always)
    func next(_ cursor: inout CandidateCursor) -> Int? {
        if probes > 1 { return nextProbed(&cursor) }
        return clockwise(&cursor, skipReturned: false)
    }

    /// The clockwise walk from `cursor.position`: each server at its first point in the walk, optionally
    /// skipping the servers recorded in the cursor.
    @inline(__always)
    private func clockwise(_ cursor: inout CandidateCursor, skipReturned: Bool) -> Int? {
        let count = owners.count
        return previousDistance.withUnsafeBufferPointer { dist in
            owners.withUnsafeBufferPointer { own in
                while cursor.step < count {
                    var p = cursor.position &+ cursor.step
                    if p >= count { p &-= count }
                    cursor.step &+= 1
                    // First appearance of this owner in the walk: its previous point lies before the start.
                    if Int(dist[p]) >= cursor.step && !(skipReturned && cursor.hasReturned(own[p])) {
                        return Int(own[p])
                    }
                }
                return nil
            }
        }
    }

    /// Multi-probe candidates: the nearest point after any probe among servers not yet returned.
    private func nextProbed(_ cursor: inout CandidateCursor) -> Int? {
        if owners.isEmpty { return nil }
        if cursor.returnedCount == CandidateCursor.returnedCapacity {
            // Past the tracked candidates: clockwise from the last winner's point, skipping them (and, through
            // the walk's own first-appearance test, everything it returned itself).
            return clockwise(&cursor, skipReturned: true)
        }
        let winner: Int
        if cursor.returnedCount == 0 {
            winner = cursor.position  // makeCursor already found it
        } else {
            if cursor.returnedCount >= routableCount { return nil }
            winner = nearestPoint(cursor, skippingReturned: true)
        }
        let server = owners[winner]
        cursor.recordReturned(server)
        cursor.position = winner
        return Int(server)
    }

    var tableBytes: Int {
        positions.count * (MemoryLayout<UInt64>.stride + 2 * MemoryLayout<UInt32>.stride)
            + bucketStart.count * MemoryLayout<UInt32>.stride
    }

    /// Each point's chance of winning a uniform key, summed per server.
    ///
    /// With one probe a point wins exactly its arc (previous point, this point]. With P probes, let g be a
    /// point's arc and F(d) the fraction of positions whose distance forward to the next point is at most d
    /// (F(d) = sum over arcs of min(arc, d)). The point wins when some probe lands in its arc at distance x
    /// and every other probe is farther than x from its own point, so its share is
    /// P * integral from 0 to g of (1 - F(x))^(P-1) dx. 1 - F is piecewise linear between the sorted arc
    /// lengths (slope = the number of arcs longer than x), so the integral is summed exactly piece by piece.
    func exactShares() -> [Double]? {
        var shares = [Double](repeating: 0, count: servers.count)
        let count = positions.count
        if count == 0 { return shares }
        if count == 1 {
            shares[Int(owners[0])] = 1
            return shares
        }
        var widths = [UInt64](repeating: 0, count: count)
        for i in 0..<count {
            widths[i] = positions[i] &- positions[i == 0 ? count - 1 : i - 1]
        }
        @inline(__always) func arc(_ i: Int) -> Double { Double(widths[i]) / 18_446_744_073_709_551_616.0 }
        if probes == 1 {
            for i in 0..<count { shares[Int(owners[i])] += arc(i) }
            return shares
        }
        let order = Ring.orderByWidth(widths)
        var consumed = 0.0  // sum of the arcs shorter than the current piece
        var low = 0.0
        var remainingAtLow = 1.0  // 1 - F(low)
        var integral = 0.0  // P * integral from 0 to low of (1 - F)^(P-1)
        for (rank, point) in order.enumerated() {
            let i = Int(point)
            let slope = Double(count - rank)
            let high = arc(i)
            let remainingAtHigh = max(0, 1 - consumed - slope * high)
            if high > low {
                integral +=
                    (Ring.power(remainingAtLow, probes) - Ring.power(remainingAtHigh, probes)) / slope
            }
            shares[Int(owners[i])] += integral
            consumed += high
            low = high
            remainingAtLow = remainingAtHigh
        }
        return shares
    }

    /// The points' indices ordered by arc width, equal widths by index: a stable LSD radix sort, 16 bits per
    /// pass over the bits any width uses. A comparison sort of 160,000 arcs (1,000 servers) took most of the
    /// admin call that asked for the shares.
    static func orderByWidth(_ widths: [UInt64]) -> [UInt32] {
        var order = (0..<widths.count).map { UInt32(truncatingIfNeeded: $0) }
        var scratch = order
        let used = widths.reduce(0, |)
        var shift: UInt64 = 0
        var counts = [Int](repeating: 0, count: 1 << 16)
        while shift < 64 && used >> shift != 0 {
            for b in counts.indices { counts[b] = 0 }
            for w in widths { counts[Int((w >> shift) & 0xffff)] += 1 }
            var total = 0
            for b in counts.indices {
                let c = counts[b]
                counts[b] = total
                total += c
            }
            for p in order {
                let b = Int((widths[Int(p)] >> shift) & 0xffff)
                scratch[counts[b]] = p
                counts[b] += 1
            }
            swap(&order, &scratch)
            shift += 16
        }
        return order
    }

    private static func power(_ x: Double, _ n: Int) -> Double {
        var r = 1.0
        for _ in 0..<n { r *= x }
        return r
    }

    /// Exact for one-probe ring to one-probe ring: sweep the merged boundaries of both rings; each
    /// elementary interval (b[k-1], b[k]] is owned by the first point >= b[k] in each ring. With more
    /// probes a key's owner depends on several positions at once, so the caller samples instead.
    func exactMovedFraction(to other: any RoutingAlgorithm) -> Double? {
        guard let other = other as? Ring, probes == 1, other.probes == 1 else { return nil }
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
            if ib >= b.count || (ia < a.count && a[ia] <= b[ib]) {
                boundary = a[ia]
            } else {
                boundary = b[ib]
            }
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

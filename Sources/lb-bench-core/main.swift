import Glibc
import LBCore

// lb-bench-core: routing-core numbers for docs/bench-core.md. Run in release:
//     swift run -c release lb-bench-core
// One table: algorithm x servers -> lookup ns/op (XXH3 of a 32-byte key + pick), build ms, table bytes,
// balance (max/mean first-candidate load over 10M keys), disruption when one server is removed (moved keys /
// keys that were on it). Then ring balance by probes and by points, and allocations per lookup.
//
// Balance is measured over 10M keys because a sample adds its own spread: over 1M keys a perfectly fair
// split of 100 servers still measures about 1.025 (each server's count varies by 1%), over 10M about
// 1.008. Rendezvous at 1000 servers scores every server per key, so it samples 1M keys there.

let keyCount = 10_000_000
let slowKeyCount = 1_000_000
let keyBytes = 32
let lookupKeys = 8_192

func servers(_ n: Int, weights: (Int) -> Int = { _ in 1 }) -> [ServerSpec] {
    (0..<n).map { i in
        let digits = String(i)
        let id = "s" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        return ServerSpec(id: id, host: "10.0.\(i / 250).\(i % 250 + 1)", port: 8080, weight: weights(i))
    }
}

func build(_ list: [ServerSpec], _ config: RoutingConfig) -> RoutingSnapshot {
    do { return try RoutingSnapshot(servers: list, config: config) } catch { fatalError("\(error)") }
}

/// First candidate of `keys` digests.
func owners(_ s: RoutingSnapshot, keys: Int = keyCount, seed: UInt64 = 1) -> [Int32] {
    var rng = SplitMix64(seed: seed)
    var out = [Int32](repeating: -1, count: keys)
    for k in 0..<keys { out[k] = Int32(s.pick(forKeyHash: rng.next(), isEligible: { _ in true }) ?? -1) }
    return out
}

/// max over servers of load / expected load, where expected = keys x weight share (max/mean when equal).
func balance(_ owners: [Int32], servers list: [ServerSpec]) -> Double {
    var loads = [Int](repeating: 0, count: list.count)
    for o in owners where o >= 0 { loads[Int(o)] += 1 }
    let totalWeight = Double(list.reduce(0) { $0 + $1.weight })
    var worst = 0.0
    for (i, server) in list.enumerated() where server.weight > 0 {
        worst = max(worst, Double(loads[i]) / (Double(owners.count) * Double(server.weight) / totalWeight))
    }
    return worst
}

// 32-byte random keys, hashed on every lookup.
var keyRNG = SplitMix64(seed: 99)
var keyBuffer = [UInt8](repeating: 0, count: lookupKeys * keyBytes)
for i in keyBuffer.indices { keyBuffer[i] = UInt8(truncatingIfNeeded: keyRNG.next()) }

/// One lookup as the proxy does it: hash the key bytes with the configured hash, take the first eligible.
@inline(never)
func lookups(_ s: RoutingSnapshot, count: Int, keys: UnsafeRawBufferPointer) {
    var acc = 0
    var k = 0
    for _ in 0..<count {
        let h = s.hashKey(UnsafeRawBufferPointer(rebasing: keys[(k * keyBytes)..<(k * keyBytes + keyBytes)]))
        acc &+= s.pick(forKeyHash: h, isEligible: { _ in true }) ?? 0
        k = k + 1 == lookupKeys ? 0 : k + 1
    }
    Sink.value &+= acc
}

/// Lookup p50 in ns: `batches` timed batches of 4,096 lookups after one warming batch.
@MainActor func measureLookupNs(_ s: RoutingSnapshot, batches: Int = 300) -> Double {
    keyBuffer.withUnsafeBytes { keys in
        lookups(s, count: 4_096, keys: keys)  // warm caches
        return Measure.p50NanosecondsPerOp(batches: batches, size: 4_096) { lookups(s, count: $0, keys: keys) }
    }
}

/// The `--count-allocations` child: counts heap allocations around lookup loops and exits.
@MainActor func countAllocations() -> Never {
    guard AllocationCount.install() else {
        print("  not measured: \(AllocationCount.library) is not preloaded, so glibc ignores malloc hooks")
        exit(1)
    }
    // Calibration: objects kept alive in an array cannot be stack-promoted, so each is a real malloc.
    final class Probe { var x = 0 }
    var kept: [Probe] = []
    kept.reserveCapacity(1_000)
    let calibrationStart = AllocationCount.count
    for _ in 0..<1_000 { kept.append(Probe()) }
    let calibration = AllocationCount.count - calibrationStart
    Sink.value &+= kept.count
    print("  calibration: 1000 class instances kept alive -> \(calibration) allocations counted")
    for algorithm in AlgorithmName.allCases {
        let name = algorithm.rawValue
        let s = build(servers(100), RoutingConfig(algorithm: algorithm, boundedLoad: 1.25))
        var loads = [Int](repeating: 0, count: 100)
        for i in stride(from: 0, to: 100, by: 3) { loads[i] = 1_000 }  // a third overloaded: probing walks on
        let total = loads.reduce(0, +)
        let lookupCount = 1_000_000
        keyBuffer.withUnsafeBytes { keys in
            lookups(s, count: 1_000, keys: keys)
            let a0 = AllocationCount.count
            lookups(s, count: lookupCount, keys: keys)
            let plain = AllocationCount.count - a0
            var acc = 0
            var a1 = 0
            loads.withUnsafeBufferPointer { l in
                for k in 0..<(lookupCount + 1_000) {
                    if k == 1_000 { a1 = AllocationCount.count }  // after a warm-up (one-time runtime caches)
                    let i = k % lookupKeys
                    let h = s.hashKey(
                        UnsafeRawBufferPointer(rebasing: keys[(i * keyBytes)..<(i * keyBytes + keyBytes)]))
                    acc &+= s.pick(forKeyHash: h, isEligible: { $0 != 5 }, load: { l[$0] }, totalLoad: total) ?? 0
                }
            }
            Sink.value &+= acc
            let bounded = AllocationCount.count - a1
            print(
                "  \(name): pick \(Double(plain) / Double(lookupCount)), bounded-load pick (factor 1.25, "
                    + "a third of servers overloaded) \(Double(bounded) / Double(lookupCount))")
        }
    }

    // Per hash function: allocations of hashKey alone.
    keyBuffer.withUnsafeBytes { keys in
        var line = "  hashKey per key:"
        for hash in KeyHashName.allCases {
            let s = build(servers(10), RoutingConfig(algorithm: .maglev, hash: hash))
            var a0 = 0
            var acc: UInt64 = 0
            for k in 0..<(100_000 + 1_000) {
                if k == 1_000 { a0 = AllocationCount.count }  // after a warm-up (e.g. zlib's CRC table)
                let i = k % lookupKeys
                acc &+= s.hashKey(UnsafeRawBufferPointer(rebasing: keys[(i * keyBytes)..<(i * keyBytes + keyBytes)]))
            }
            Sink.value &+= Int(truncatingIfNeeded: acc)
            line += " \(hash.rawValue) \(Double(AllocationCount.count - a0) / 100_000)"
        }
        print(line)
    }
    exit(0)
}

if CommandLine.arguments.contains(AllocationCount.flag) { countAllocations() }

struct Row {
    var name: String
    var n: Int
    var lookupNs: Double
    var buildMs: Double
    var bytes: Int
    var balance: Double
    var disruption: Double
}

var rows: [Row] = []
let clock = ContinuousClock()
let started = clock.now

let cases: [(String, AlgorithmName, (Int) -> Int)] = [
    ("ring", .ring, { _ in 1 }),
    ("ring, 1 probe (classic ketama)", .ring, { _ in 1 }),
    ("maglev", .maglev, { _ in 1 }),
    ("maglev M=655373", .maglev, { _ in 1 }),
    ("rendezvous", .rendezvous, { _ in 1 }),
    ("rendezvous, weights 1-4", .rendezvous, { 1 + $0 % 4 }),
]

// `--only TEXT` runs just the table rows whose name contains TEXT (for quick iteration), and exits.
let onlyIndex = CommandLine.arguments.firstIndex(of: "--only")
let only = onlyIndex.flatMap { $0 + 1 < CommandLine.arguments.count ? CommandLine.arguments[$0 + 1] : nil }

for (name, algorithm, weights) in cases where only.map({ name.contains($0) }) ?? true {
    for n in [10, 100, 1000] {
        // The larger maglev table (~100 entries per server at 1000, per the Maglev paper's advice) only there.
        let bigTable = name.contains("655373")
        if bigTable && n != 1000 { continue }
        let config = RoutingConfig(
            algorithm: algorithm, ringProbes: name.contains("1 probe") ? 1 : RoutingConfig.defaultRingProbes,
            maglevTableSize: bigTable ? 655_373 : 65_537)
        let list = servers(n, weights: weights)
        let buildRuns = algorithm == .ring && n == 1000 ? 7 : 15
        let buildMs = Measure.medianMilliseconds(runs: buildRuns) { Sink.value &+= build(list, config).routableCount }
        let s = build(list, config)

        // Lookup p50: fewer batches when each lookup scores every server.
        let lookupNs = measureLookupNs(s, batches: algorithm == .rendezvous ? max(10, 20_000 / n) : 300)

        let keys = algorithm == .rendezvous && n == 1000 ? slowKeyCount : keyCount
        let before = owners(s, keys: keys)
        let removedID = list[n / 2].id
        let after = build(list.filter { $0.id != removedID }, config)
        let afterOwners = owners(after, keys: keys)
        let removed = s.index(of: removedID)!
        var moved = 0
        var onRemoved = 0
        for k in 0..<keys {
            let was = Int(before[k])
            if was == removed { onRemoved += 1 }
            let wasID = s.servers[was].id
            if after.servers[Int(afterOwners[k])].id != wasID { moved += 1 }
        }
        rows.append(
            Row(
                name: name, n: n, lookupNs: lookupNs, buildMs: buildMs, bytes: s.tableBytes,
                balance: balance(before, servers: s.servers), disruption: Double(moved) / Double(onRemoved)))
    }
}

print(
    "| algorithm | servers | lookup p50 ns/op | ns/server | build ms | table bytes | balance max/mean (10M keys*) "
        + "| disruption vs optimal (remove 1) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows {
    let perServer = r.name.hasPrefix("rendezvous") ? Measure.fixed(r.lookupNs / Double(r.n), 2) : "-"
    print(
        "| \(r.name) | \(r.n) | \(Measure.fixed(r.lookupNs, 1)) | \(perServer) | \(Measure.fixed(r.buildMs, 3)) | "
            + "\(r.bytes) | \(Measure.fixed(r.balance, 4)) | \(Measure.fixed(r.disruption, 4)) |")
}
print("(balance = max over servers of load / (keys x weight share); equals max/mean for equal weights;")
print(" * rendezvous at 1000 servers: 1M keys. Ring probes: \(RoutingConfig.defaultRingProbes) unless the row says 1)")

if only != nil { exit(0) }

// Hash cost alone, for context.
let hashNs = keyBuffer.withUnsafeBytes { keys in
    Measure.p50NanosecondsPerOp(batches: 300, size: 4_096) { count in
        var acc: UInt64 = 0
        for k in 0..<count {
            let i = k % lookupKeys
            acc &+= Hashes.xxh3_64(UnsafeRawBufferPointer(rebasing: keys[(i * keyBytes)..<(i * keyBytes + keyBytes)]))
        }
        Sink.value &+= Int(truncatingIfNeeded: acc)
    }
}
print("\nXXH3-64 of a 32-byte key alone: \(Measure.fixed(hashNs, 1)) ns")

// Ring: balance at 100 equal servers by probes per key (160 points per server), then by points per server,
// from exact keyspace shares and from 10M sampled keys. Also over 20 other id sets, since ring balance
// depends on where the ids happen to hash.
func exactBalance(_ s: RoutingSnapshot) -> Double { (s.keyspaceShares().max() ?? 0) * Double(s.servers.count) }
func idSet(_ set: Int) -> [ServerSpec] {
    (0..<100).map { ServerSpec(id: "set\(set)-backend-\($0)", host: "10.1.\(set).\($0 + 1)", port: 80) }
}

print("\nRing at 100 equal servers x 160 points by probes per key:")
print(
    "| probes | lookup p50 ns/op | exact max/mean | 10M-key max/mean | exact max/mean over 20 other id sets: median, worst |"
)
print("|---:|---:|---:|---:|---:|")
for probes in 1...4 {
    let config = RoutingConfig(algorithm: .ring, ringProbes: probes)
    let s = build(servers(100), config)
    var others = (1...20).map { exactBalance(build(idSet($0), config)) }
    others.sort()
    print(
        "| \(probes) | \(Measure.fixed(measureLookupNs(s), 1)) | \(Measure.fixed(exactBalance(s), 4)) | "
            + "\(Measure.fixed(balance(owners(s), servers: s.servers), 4)) | "
            + "\(Measure.fixed((others[9] + others[10]) / 2, 4)), \(Measure.fixed(others[19], 4)) |")
}

print("\nRing balance at 100 equal servers by vnodes (points per server), exact keyspace shares:")
print("| vnodes | ring points | 1 probe | \(RoutingConfig.defaultRingProbes) probes |")
print("|---:|---:|---:|---:|")
for vnodes in [160, 320, 640, 1280, 2560, 5120] {
    let one = build(servers(100), RoutingConfig(algorithm: .ring, vnodes: vnodes, ringProbes: 1))
    let probed = build(servers(100), RoutingConfig(algorithm: .ring, vnodes: vnodes))
    print(
        "| \(vnodes) | \(100 * vnodes) | \(Measure.fixed(exactBalance(one), 4)) | "
            + "\(Measure.fixed(exactBalance(probed), 4)) |")
}

// Allocations per lookup: counted in a child process running with glibc's debug allocator hooks.
print("\nAllocations per lookup (every malloc/calloc/realloc/memalign counted around 1M lookups, hash xxh3):")
AllocationCount.runChild()

print(
    "\nTotal bench time: \(Measure.fixed(Measure.nanoseconds(clock.now - started) / 1e9, 1)) s (sink \(Sink.value & 1))"
)

import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Several lb instances on one 3-member etcd cluster: every change reaches all of them and they route alike; the
/// time from a write to the last instance applying it is measured; conflicting admin writes let one win; instances
/// register with a lease that expires when one is killed; an instance cut off while etcd compacts past its
/// revision reads everything again and applies only the difference.
final class EtcdClusterTests: IntegrationTestCase {
    private let cluster = "trio"

    private func key(_ id: String) -> String { "/lb/\(cluster)/servers/\(id)" }

    /// One lb instance per member, each listing the members in another order, so they do not all watch the same
    /// one.
    private func startInstances(_ etcd: EtcdCluster) throws -> [EtcdLB] {
        let urls = etcd.members.map(\.clientURL)
        return try (0..<urls.count).map { i in
            try startEtcdLB(endpoints: (urls[i...] + urls[..<i]).joined(separator: ","), cluster: cluster)
        }
    }

    func testEveryChangeReachesAllInstancesWhichThenRouteIdentically() throws {
        let etcd = try EtcdCluster(self, members: 3)
        let backends = try demoBackends(4)
        for b in backends.prefix(3) { try etcd.putServer(cluster: cluster, id: b.name, port: b.port) }
        let lbs = try startInstances(etcd)
        let paths = TrafficProbe.paths(2_000)

        /// Waits until every instance applied `revision`, checks that they route the 2,000 keys the same way,
        /// and returns the wall-clock ms from `sentAt` to the last instance's apply.
        func propagated(_ revision: Int64, sentAt: Int64, compareRouting: Bool) throws -> Int64 {
            let applied = try lbs.map { try $0.waitApplied(revision) }
            if compareRouting {
                let maps = try lbs.map { try TrafficProbe.backends(port: $0.server.proxyPort, paths: paths) }
                XCTAssertEqual(maps[1], maps[0], "instance 1 routes differently at revision \(revision)")
                XCTAssertEqual(maps[2], maps[0], "instance 2 routes differently at revision \(revision)")
            }
            return applied.max()! - sentAt
        }

        let seeded = try etcd.serversRevision(cluster: cluster)
        _ = try propagated(seeded, sentAt: wallClockMs(), compareRouting: true)
        for lb in lbs { XCTAssertEqual(try lb.serverIDs(), ["b1", "b2", "b3"]) }

        // Three changes, each followed by the 2,000-key comparison: an add, a reweight, a delete.
        var sentAt = wallClockMs()
        _ = try propagated(
            try etcd.putServer(cluster: cluster, id: "b4", port: backends[3].port), sentAt: sentAt, compareRouting: true
        )
        sentAt = wallClockMs()
        _ = try propagated(
            try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port, weight: 4), sentAt: sentAt,
            compareRouting: true)
        sentAt = wallClockMs()
        _ = try propagated(try etcd.delete(key("b1")), sentAt: sentAt, compareRouting: true)
        for lb in lbs { XCTAssertEqual(try lb.serverIDs(), ["b2", "b3", "b4"]) }

        // Write-to-last-apply latency: alternate b1's presence, 40 times. The commit happens between sending the
        // write and its answer, so the time from the answer is a lower bound and the time from sending an upper one.
        var fromAnswer: [Int64] = []
        var fromSend: [Int64] = []
        for i in 0..<40 {
            sentAt = wallClockMs()
            let revision =
                i % 2 == 0
                ? try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
                : try etcd.delete(key("b1"))
            let answeredAt = wallClockMs()
            let last = try propagated(revision, sentAt: answeredAt, compareRouting: false)
            fromAnswer.append(max(0, last))
            fromSend.append(last + answeredAt - sentAt)
        }
        func percentiles(_ values: [Int64]) -> (p50: Int64, p99: Int64, max: Int64) {
            let v = values.sorted()
            return (v[v.count / 2], v[min(v.count - 1, v.count * 99 / 100)], v[v.count - 1])
        }
        let (a50, a99, aMax) = percentiles(fromAnswer)
        let (s50, s99, sMax) = percentiles(fromSend)
        print(
            "etcd write to the last of 3 instances applying it, 40 changes: from the write's answer p50 \(a50) ms, "
                + "p99 \(a99) ms, max \(aMax) ms; from sending it p50 \(s50) ms, p99 \(s99) ms, max \(sMax) ms")
        // The loopback target is p99 <= 100 ms; the median is held to it here, the tail gets room for a loaded
        // shared test machine.
        XCTAssertLessThanOrEqual(a50, 100, "\(fromAnswer.sorted())")
        XCTAssertLessThan(a99, 1_000, "\(fromAnswer.sorted())")

        // One member stops: the instances watching it move to another and keep applying changes.
        etcd.stop(member: 0)
        sentAt = wallClockMs()
        let afterStop = try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port, weight: 2)
        _ = try lbs.map { try $0.waitApplied(afterStop, timeout: 15) }
        _ = try propagated(afterStop, sentAt: sentAt, compareRouting: true)
    }

    /// The leader is killed while clients send requests: none fails (routing never needed etcd), the instances
    /// watching it move to a surviving member, and a change written after the election reaches them all.
    func testKillingTheLeaderUnderClientLoadFailsNoRequestAndChangesResumeAfterTheElection() throws {
        let etcd = try EtcdCluster(self, members: 3)
        let backends = try demoBackends(3)
        for b in backends.prefix(2) { try etcd.putServer(cluster: cluster, id: b.name, port: b.port) }
        let lbs = try startInstances(etcd)
        let seeded = try etcd.serversRevision(cluster: cluster)
        for lb in lbs { _ = try lb.waitApplied(seeded) }
        let loads = lbs.map {
            LoadGenerator(port: $0.server.proxyPort, paths: TrafficProbe.paths(200, prefix: "/load"), threads: 1)
        }
        defer { for l in loads { l.stop() } }
        try eventually(timeout: 5, "load runs on every instance") { loads.allSatisfy { $0.succeeded > 20 } }

        let leader = try etcd.leaderIndex()
        etcd.kill(member: leader)
        for l in loads { try l.waitForProgress(50) }
        let added = try etcd.putServer(cluster: cluster, id: backends[2].name, port: backends[2].port)
        for lb in lbs { _ = try lb.waitApplied(added, timeout: 20) }
        for lb in lbs { XCTAssertEqual(try lb.serverIDs(), ["b1", "b2", "b3"]) }
        XCTAssertNotEqual(try etcd.leaderIndex(), leader)
        for l in loads { try l.waitForProgress(50) }
        for (i, l) in loads.enumerated() {
            l.stop()
            XCTAssertEqual(l.failures.map(\.description), [], "instance \(i): a request failed")
            print("etcd leader \(leader) killed: instance \(i) served \(l.succeeded) requests, 0 failed")
        }
    }

    func testConflictingAdminWritesThroughTwoInstancesLetExactlyOneWinAndNothingDiverges() throws {
        let etcd = try EtcdCluster(self, members: 3)
        let backends = try demoBackends(3)
        try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
        try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port)
        let lbs = try startInstances(etcd)
        for lb in lbs {
            try lb.waitApplied(try etcd.serversRevision(cluster: cluster))
            try lb.waitCurrent()
        }

        // An add through one instance reaches all three.
        let post = try lbs[0].admin.call(
            "POST", "/manage/servers", body: #"{"id": "b3", "host": "127.0.0.1", "port": \#(backends[2].port)}"#)
        XCTAssertEqual(post.status, 201, post.response.bodyString)
        let added = (post.server["revision"] as? NSNumber)?.int64Value ?? -1
        for lb in lbs {
            try lb.waitApplied(added)
            XCTAssertEqual(try lb.serverIDs(), ["b1", "b2", "b3"])
        }

        // Two instances reweight b1 at the same moment, each from the same mod_revision: one wins, the other gets
        // 409 and writes nothing. (Sent one after the other's apply, both would rightly win: try until they race.)
        var raced = false
        for attempt in 0..<10 where !raced {
            let weights = [10 + 2 * attempt, 11 + 2 * attempt]
            let results = Locked([0, 0])
            let ports = [lbs[1].admin.port, lbs[2].admin.port]
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                let answer = try? AdminClient(port: ports[i]).call(
                    "PATCH", "/manage/servers/b1", body: #"{"weight": \#(weights[i])}"#)
                results.withLock { $0[i] = answer?.status ?? -1 }
            }
            let statuses = results.current
            XCTAssertTrue(statuses.sorted() == [200, 409] || statuses == [200, 200], "\(statuses)")
            let revision = try etcd.serversRevision(cluster: cluster)
            let seen = try lbs.map { lb -> Int in
                try lb.waitApplied(revision)
                return try lb.admin.servers()["b1"]?["weight"] as? Int ?? -1
            }
            XCTAssertEqual(Set(seen).count, 1, "the instances disagree on b1's weight: \(seen)")
            if statuses.sorted() == [200, 409] {
                raced = true
                XCTAssertEqual(
                    seen[0], weights[statuses.firstIndex(of: 200)!], "the winner's weight is the one applied")
            }
        }
        XCTAssertTrue(raced, "no two writes raced in 10 attempts")

        // A delete through the third instance.
        let delete = try lbs[2].admin.call("DELETE", "/manage/servers/b3")
        XCTAssertEqual(delete.status, 200, delete.response.bodyString)
        let deleted = (delete.server["revision"] as? NSNumber)?.int64Value ?? -1
        for lb in lbs {
            try lb.waitApplied(deleted)
            XCTAssertEqual(try lb.serverIDs(), ["b1", "b2"])
        }
    }

    func testInstancesRegisterAKilledOneExpiresRejoinsWithTheCurrentSetAndAStoppedOneUnregisters() throws {
        let etcd = try EtcdCluster(self, members: 3)
        let backends = try demoBackends(3)
        try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
        try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port)
        var lbs = try (0..<3).map {
            try startEtcdLB(endpoints: etcd.endpoints, cluster: cluster, instanceID: "lb\($0)")
        }
        let seeded = try etcd.serversRevision(cluster: cluster)
        try eventually(timeout: 10, "all three instances registered, each at the seeded revision") {
            let listed = try lbs[0].instances()
            return listed.keys.sorted() == ["lb0", "lb1", "lb2"]
                && listed.values.allSatisfy { (($0["revision"] as? NSNumber)?.int64Value ?? 0) >= seeded }
        }
        XCTAssertEqual(try lbs[1].admin.call("GET", "/api/cluster").json["self"] as? String, "lb1")

        // Killed: its lease is no longer renewed and its entry goes; meanwhile the set changes.
        lbs[2].server.process.signal(SIGKILL)
        _ = lbs[2].server.process.waitForExit(timeout: 5)
        let changed = try etcd.putServer(cluster: cluster, id: "b3", port: backends[2].port)
        try eventually(timeout: 10, "the killed instance's registration expired") {
            try lbs[0].instances().keys.sorted() == ["lb0", "lb1"]
        }

        // Restarted: it reads the current set, routes as the others do, and registers again.
        lbs[2] = try startEtcdLB(endpoints: etcd.endpoints, cluster: cluster, instanceID: "lb2")
        try lbs[2].waitApplied(changed)
        XCTAssertEqual(try lbs[2].serverIDs(), ["b1", "b2", "b3"])
        let paths = TrafficProbe.paths(2_000)
        try lbs[0].waitApplied(changed)
        XCTAssertEqual(
            try TrafficProbe.backends(port: lbs[2].server.proxyPort, paths: paths),
            try TrafficProbe.backends(port: lbs[0].server.proxyPort, paths: paths))
        try eventually(timeout: 10, "the restarted instance registered again at the current revision") {
            (((try lbs[0].instances()["lb2"])?["revision"] as? NSNumber)?.int64Value ?? 0) >= changed
        }

        // Stopped with SIGTERM: it revokes its lease, so its entry goes at once, not when a minute-long lease ends.
        let lasting = try startEtcdLB(endpoints: etcd.endpoints, cluster: cluster, instanceID: "lb3", leaseTTL: "60s")
        try eventually(timeout: 10, "the fourth instance registered") { try lbs[0].instances()["lb3"] != nil }
        lasting.server.process.signal(SIGTERM)
        XCTAssertEqual(lasting.server.process.waitForExit(timeout: 15), 0, lasting.server.process.log)
        try eventually(timeout: 5, "the stopped instance's entry is gone") { try lbs[0].instances()["lb3"] == nil }
    }

    func testAWatchOnAMemberThatLostItsLeaderEndsAndTheInstanceReportsStale() throws {
        let etcd = try EtcdCluster(self, members: 3)
        let backends = try demoBackends(1)
        let seeded = try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
        // This instance knows only member 0; the other two stop, so member 0 is alive but has no leader.
        let lb = try startEtcdLB(endpoints: etcd.members[0].clientURL, cluster: cluster)
        try lb.waitApplied(seeded)
        try lb.waitCurrent()
        etcd.stop(member: 1)
        etcd.stop(member: 2)
        try eventually(timeout: 15, "the instance noticed that its member has no leader") {
            try lb.source()["state"] as? String == "stale"
        }
        XCTAssertEqual(try lb.serverIDs(), ["b1"], "routing stays as it was")
        etcd.startAll()
        try eventually(timeout: 20, "the instance watches again once the cluster has a leader") {
            try lb.source()["state"] as? String == "current"
        }
    }

    func testCompactionPastADisconnectedInstanceMakesItReadAgainAndApplyOnlyTheDifference() throws {
        let etcd = try EtcdCluster(self, members: 3)
        let backends = try demoBackends(3)
        try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
        let seeded = try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port)
        // This instance knows only member 0.
        let lb = try startEtcdLB(endpoints: etcd.members[0].clientURL, cluster: cluster)
        try lb.waitApplied(seeded)

        etcd.stop(member: 0)
        try eventually(timeout: 10, "the instance reports the source as stale") {
            try lb.source()["state"] as? String == "stale"
        }
        // Meanwhile, through the other members: b3 added, b1 reweighted, b2 left as it is; then the history the
        // instance would resume from is compacted away.
        try etcd.putServer(cluster: cluster, id: "b3", port: backends[2].port)
        let last = try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port, weight: 5)
        try etcd.compact(last)

        etcd.startAll()
        try lb.waitApplied(last, timeout: 20)
        let source = try lb.source()
        XCTAssertEqual(source["resyncs"] as? Int, 1, "\(source)")
        XCTAssertEqual(
            source["last_change"] as? [String: [String]], ["added": ["b3"], "removed": [], "updated": ["b1"]])
        XCTAssertEqual(try lb.serverIDs(), ["b1", "b2", "b3"])
        XCTAssertEqual(try lb.admin.servers()["b1"]?["weight"] as? Int, 5)
        XCTAssertTrue(lb.server.process.log.contains("compacted"), lb.server.process.log)
    }
}

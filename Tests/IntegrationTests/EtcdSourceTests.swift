import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The etcd source against one real etcd member: the first read applies the set, watched changes reach routing,
/// a bad value is skipped whole, the admin API writes through etcd, and with etcd gone lb keeps routing, says it
/// is stale, refuses writes with 503, and catches up when etcd returns.
final class EtcdSourceTests: IntegrationTestCase {
    private let cluster = "single"

    private func key(_ id: String) -> String { "/lb/\(cluster)/servers/\(id)" }

    func testTheFirstReadAppliesTheSetWatchedChangesReachRoutingAndAdminWritesGoThroughEtcd() throws {
        let etcd = try EtcdCluster(self, members: 1)
        let backends = try demoBackends(3)
        try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
        let seeded = try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port)
        try etcd.putServer(cluster: "other", id: "b3", port: backends[2].port)  // another cluster's: not ours

        let lb = try startEtcdLB(endpoints: etcd.endpoints, cluster: cluster)
        try lb.waitApplied(seeded)
        XCTAssertEqual(try lb.serverIDs(), ["b1", "b2"])
        let paths = TrafficProbe.paths(200)
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths).values), ["b1", "b2"])
        // The set is applied from the first read; the source is current once the watch that follows runs.
        try lb.waitCurrent()
        let source = try lb.source()
        XCTAssertEqual(source["stale_seconds"] as? Double, 0)

        // A put adds a server, a delete removes one, a reweight changes one: each is applied as it comes.
        try lb.waitApplied(try etcd.putServer(cluster: cluster, id: "b3", port: backends[2].port))
        XCTAssertEqual(try lb.serverIDs(), ["b1", "b2", "b3"])
        try lb.waitApplied(try etcd.delete(key("b1")))
        XCTAssertEqual(try lb.serverIDs(), ["b2", "b3"])
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths).values), ["b2", "b3"])
        try lb.waitApplied(try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port, weight: 3))
        XCTAssertEqual(try lb.admin.servers()["b2"]?["weight"] as? Int, 3)
        XCTAssertEqual((try lb.source()["last_change"] as? [String: [String]])?["updated"], ["b2"])

        // A bad value is no server, reported with its key and counted; the rest of the set is untouched.
        let bad = try etcd.put(key("b4"), #"{"id": "b4", "host": "127.0.0.1", "port": 0}"#)
        try lb.waitApplied(bad)
        XCTAssertEqual(try lb.serverIDs(), ["b2", "b3"])
        let rejected = try lb.source()["rejected"] as? [[String: String]] ?? []
        XCTAssertEqual(rejected.map { $0["key"] }, [key("b4")])
        XCTAssertTrue(rejected.first?["error"]?.hasPrefix("port:") ?? false, "\(rejected)")
        let metrics = try lb.admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("lb_source_rejected_values_total 1\n"), metrics)
        XCTAssertTrue(metrics.contains("lb_source_stale 0\n"), metrics)

        // The admin API writes to etcd; the change is in place here when the answer comes.
        let post = try lb.admin.call(
            "POST", "/manage/servers", body: #"{"id": "b1", "host": "127.0.0.1", "port": \#(backends[0].port)}"#)
        XCTAssertEqual(post.status, 201, post.response.bodyString)
        XCTAssertEqual(post.server["key"] as? String, key("b1"))
        XCTAssertEqual(try lb.serverIDs(), ["b1", "b2", "b3"])
        let stored = try etcd.value(key("b1")).flatMap { jsonObject(String(decoding: $0, as: UTF8.self)) }
        XCTAssertEqual(stored?["port"] as? Int, backends[0].port, "\(String(describing: stored))")
        // A dry run writes nothing; a drain is per instance and refused; an id in use is a conflict.
        let revisionBefore = try etcd.serversRevision(cluster: cluster)
        let dry = try lb.admin.call("DELETE", "/manage/servers/b1?dry_run=1")
        XCTAssertEqual(dry.status, 200, dry.response.bodyString)
        XCTAssertEqual(dry.json["dry_run"] as? Bool, true)
        XCTAssertEqual(try etcd.serversRevision(cluster: cluster), revisionBefore)
        let drain = try lb.admin.call("PATCH", "/manage/servers/b1", body: #"{"state": "draining"}"#)
        XCTAssertEqual(drain.status, 400, drain.response.bodyString)
        XCTAssertEqual(drain.json["field"] as? String, "state")
        let again = try lb.admin.call(
            "POST", "/manage/servers", body: #"{"id": "b1", "host": "127.0.0.1", "port": \#(backends[0].port)}"#)
        XCTAssertEqual(again.status, 409, again.response.bodyString)
        let patch = try lb.admin.call("PATCH", "/manage/servers/b1", body: #"{"weight": 2}"#)
        XCTAssertEqual(patch.status, 200, patch.response.bodyString)
        XCTAssertEqual(try lb.admin.servers()["b1"]?["weight"] as? Int, 2)
        let delete = try lb.admin.call("DELETE", "/manage/servers/b1")
        XCTAssertEqual(delete.status, 200, delete.response.bodyString)
        XCTAssertEqual(try lb.serverIDs(), ["b2", "b3"])
        XCTAssertNil(try etcd.value(key("b1")))
    }

    func testWithEtcdGoneRoutingGoesOnStaleAndChangesArriveWhenItReturns() throws {
        let etcd = try EtcdCluster(self, members: 1)
        let backends = try demoBackends(3)
        try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
        let seeded = try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port)
        let lb = try startEtcdLB(endpoints: etcd.endpoints, cluster: cluster)
        try lb.waitApplied(seeded)
        let paths = TrafficProbe.paths(300)
        let before = try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths)

        etcd.stopAll()
        try eventually(timeout: 10, "lb reports the source as stale") { try lb.source()["state"] as? String == "stale" }
        Thread.sleep(forTimeInterval: 0.3)
        // Routing goes on with the last set, unchanged.
        XCTAssertEqual(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths), before)
        let source = try lb.source()
        XCTAssertGreaterThan(source["stale_seconds"] as? Double ?? 0, 0.2, "\(source)")
        XCTAssertNotNil(source["last_error"], "\(source)")
        let health = try lb.admin.call("GET", "/api/health")
        XCTAssertEqual(health.status, 200, "a stale source does not make lb unhealthy: it still routes")
        let metrics = try lb.admin.call("GET", "/metrics").response.bodyString
        XCTAssertTrue(metrics.contains("lb_source_stale 1\n"), metrics)
        // Admin writes cannot reach etcd: 503 naming the cause, nothing changes.
        let post = try lb.admin.call(
            "POST", "/manage/servers", body: #"{"id": "b3", "host": "127.0.0.1", "port": \#(backends[2].port)}"#)
        XCTAssertEqual(post.status, 503, post.response.bodyString)
        XCTAssertTrue(post.error.contains("etcd is unreachable"), post.error)
        XCTAssertEqual(try lb.serverIDs(), ["b1", "b2"])

        // etcd returns; whatever changed in it since is applied.
        etcd.startAll()
        try etcd.waitUntilServing()
        try etcd.delete(key("b1"))
        let changed = try etcd.putServer(cluster: cluster, id: "b3", port: backends[2].port)
        try lb.waitApplied(changed, timeout: 15)
        XCTAssertEqual(try lb.serverIDs(), ["b2", "b3"])
        try eventually(timeout: 10, "lb reports the source as current") {
            try lb.source()["state"] as? String == "current"
        }
        XCTAssertEqual(Set(try TrafficProbe.backends(port: lb.server.proxyPort, paths: paths).values), ["b2", "b3"])
    }

    func testWithAuthenticationOnTheInstanceSignsInAndWrongCredentialsLeaveItStale() throws {
        let etcd = try EtcdCluster(self, members: 1)
        let backends = try demoBackends(2)
        try etcd.putServer(cluster: cluster, id: "b1", port: backends[0].port)
        try etcd.enableAuthentication(password: "s3cret")
        let lb = try startEtcdLB(endpoints: etcd.endpoints, cluster: cluster, credentials: ("root", "s3cret"))
        try lb.waitApplied(try etcd.serversRevision(cluster: cluster))
        XCTAssertEqual(try lb.serverIDs(), ["b1"])
        // The watch and the admin API's writes carry the token too.
        try lb.waitApplied(try etcd.putServer(cluster: cluster, id: "b2", port: backends[1].port))
        XCTAssertEqual(try lb.serverIDs(), ["b1", "b2"])
        let delete = try lb.admin.call("DELETE", "/manage/servers/b2")
        XCTAssertEqual(delete.status, 200, delete.response.bodyString)
        XCTAssertEqual(try lb.serverIDs(), ["b1"])

        let denied = try startEtcdLB(endpoints: etcd.endpoints, cluster: cluster, credentials: ("root", "wrong"))
        try eventually(timeout: 10, "the instance with a wrong password reports why it has no set") {
            (try denied.source()["last_error"] as? String ?? "").contains("authenticate")
        }
        XCTAssertEqual(try denied.source()["state"] as? String, "stale")
        XCTAssertEqual(try denied.serverIDs(), [])
    }
}

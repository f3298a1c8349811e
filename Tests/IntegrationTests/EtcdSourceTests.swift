import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The etcd source against one real etcd member: the first read applies the set, watched changes reach routing,
/// a bad value is skipped whole, and with etcd gone lb keeps routing, says it is stale, and catches up when etcd
/// returns.
final class EtcdSourceTests: IntegrationTestCase {
    private let cluster = "single"

    private func key(_ id: String) -> String { "/lb/\(cluster)/servers/\(id)" }

    func testTheFirstReadAppliesTheSetAndWatchedChangesReachRouting() throws {
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
        let source = try lb.source()
        XCTAssertEqual(source["state"] as? String, "current", "\(source)")
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

        // Writes through the admin API would make this instance differ from the others.
        let post = try lb.admin.call(
            "POST", "/manage/servers", body: #"{"id": "x", "host": "127.0.0.1", "port": \#(backends[0].port)}"#)
        XCTAssertEqual(post.status, 501, post.response.bodyString)
        XCTAssertTrue(post.error.contains("/lb/\(cluster)/servers/"), post.error)
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
}

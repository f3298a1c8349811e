import Foundation
import XCTest

/// `limits.learn_server_limits` against a backend that runs out of connections the way nginx does at
/// `worker_connections` (`Tests/backends/shedding_backend.py`): it holds 300, closes its longest-idle keep-alive
/// connection to accept a new one, and leaves new ones in its accept queue while none is idle. wrk keeps 400
/// requests in flight through lb, twice: with learning off, lb keeps opening connections the backend pays for with
/// a keep-alive one each, so connections churn and requests fail; with it on, lb learns to hold requests at what
/// the backend keeps and queues the rest, and the churn stops.
final class LearntServerLimitTests: IntegrationTestCase {
    static let script = LBBinaries.packageRoot.appendingPathComponent("Tests/backends/shedding_backend.py").path
    static let capacity = 300

    private struct Run {
        var completed = 0
        var failed = 0
        var backendSheds = 0
        var connectsOpened = 0
        var server: [String: Any] = [:]
        var metrics = ""
    }

    private func run(learn: Bool) throws -> Run {
        let wrk = try requiredTool("wrk", package: "wrk")
        let python = try requiredTool("python3", package: "python3")
        let backend = try ManagedProcess.start(
            python, [Self.script, String(Self.capacity), "50"], name: "shedding-backend")
        let backendPort = try backend.waitForListening(kind: .backend)
        let config = try writeConfigFile(["limits": ["learn_server_limits": learn]])
        let lb = try LBBinaries.startServer(backends: ["127.0.0.1:\(backendPort)"], configFile: config)
        let result = ManagedProcess.run(
            wrk, ["-t", "2", "-c", "400", "-d", "3s", "--timeout", "10s", "http://127.0.0.1:\(lb.proxyPort)/item"],
            timeout: 60)
        let output = String(decoding: result.stdout, as: UTF8.self)
        XCTAssertEqual(result.status, 0, "\(output)\n\(result.stderr)")
        var run = Run()
        // "  12345 requests in 3.00s, 1.23MB read"; "Non-2xx or 3xx responses: N" only when there were any.
        for line in output.split(separator: "\n") {
            if line.contains(" requests in ") { run.completed = Int(line.split(separator: " ").first ?? "") ?? 0 }
            if line.contains("Non-2xx or 3xx responses:") {
                run.failed = Int(line.split(separator: " ").last ?? "") ?? 0
            }
        }
        let admin = AdminClient(port: lb.adminPort)
        run.server = try XCTUnwrap(
            (try admin.call("GET", "/api/stats").json["servers"] as? [[String: Any]])?.first, "one server")
        run.connectsOpened = run.server["connects_opened"] as? Int ?? -1
        run.metrics = try admin.call("GET", "/metrics").response.bodyString
        lb.process.terminate()
        backend.terminate()
        // The backend's last line: "stats accepted=A shed=S open=O idle=I answered=R".
        let last = backend.log.split(separator: "\n").last { $0.hasPrefix("stats ") } ?? ""
        let shed = last.split(separator: " ").first { $0.hasPrefix("shed=") }?.dropFirst(5)
        run.backendSheds = try XCTUnwrap(shed.flatMap { Int($0) }, backend.log)
        print(
            "learn_server_limits \(learn): \(run.completed) requests, \(run.failed) not 2xx, "
                + "\(run.connectsOpened) connections opened, \(run.backendSheds) shed by the backend, "
                + "learnt limit \(run.server["learnt_limit"] ?? "-")")
        return run
    }

    func testALearntLimitStopsTheChurnOfABackendOutOfConnections() throws {
        let off = try run(learn: false)
        let on = try run(learn: true)

        // Without learning: the backend sheds a keep-alive connection for every one lb opens beyond its 300.
        XCTAssertEqual(off.server["learnt_limit"] as? Int, 0)
        XCTAssertEqual(off.server["limits_learnt"] as? Int, 0)
        XCTAssertGreaterThan(off.backendSheds, 1_000, "the backend churned through connections")

        // With it: a limit at or below what the backend holds, the rest waiting in lb's queue.
        let limit = try XCTUnwrap(on.server["learnt_limit"] as? Int)
        XCTAssertTrue((64...Self.capacity + 64).contains(limit), "learnt limit \(limit)")
        XCTAssertGreaterThan(on.server["limits_learnt"] as? Int ?? 0, 0)
        let queue = try XCTUnwrap(on.server["queue"] as? [String: Any])
        XCTAssertGreaterThan(queue["queued"] as? Int ?? 0, 0, "requests waited in lb's queue")
        XCTAssertEqual(queue["full"] as? Int, 0)
        XCTAssertEqual(queue["timeouts"] as? Int, 0)
        XCTAssertTrue(
            on.metrics.contains(#"lb_upstream_learnt_limit{server="127.0.0.1:"#), "the limit in /metrics")

        // The churn stops: a fraction of the sheds, of the connections opened and of the failed requests.
        XCTAssertLessThan(on.backendSheds * 5, off.backendSheds, "sheds \(on.backendSheds) vs \(off.backendSheds)")
        XCTAssertLessThan(
            on.connectsOpened * 5, off.connectsOpened, "connections \(on.connectsOpened) vs \(off.connectsOpened)")
        XCTAssertLessThan(on.failed * 5, max(off.failed, 1), "failed \(on.failed) vs \(off.failed)")
        // A shed connection goes back to the same server (there is no other), and a full server is not marked
        // down for making room: passive health never took it out.
        XCTAssertLessThan(on.failed * 25, on.completed, "failed \(on.failed) of \(on.completed)")
        let health = try XCTUnwrap(on.server["health"] as? [String: Any])
        XCTAssertEqual(health["transitions"] as? Int, 0, "\(health)")
        XCTAssertGreaterThan(on.completed, 1_000)
    }
}

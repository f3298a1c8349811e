import Foundation
import XCTest

/// `lb-server`'s command line: validation like `haproxy -c` / `nginx -t`, version, flag errors.
final class CommandLineTests: IntegrationTestCase {
    private func lbServer(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = ManagedProcess.run(try LBBinaries.path(of: .server), args, timeout: 20)
        return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
    }

    func testCheckConfigAcceptsTheRepositoryConfig() throws {
        let path = LBBinaries.packageRoot.appendingPathComponent("config.json").path
        let r = try lbServer(["--check-config", "--config", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("configuration is valid: 3 servers"), r.stdout)
    }

    func testCheckConfigPrintsEveryProblemAndExitsNonZero() throws {
        let path = NSTemporaryDirectory() + "lb-bad-\(UUID().uuidString).json"
        try #"{"servers": [{"host": "127.0.0.1", "port": 0}], "routing": {"algorithm": "nope"}, "bogus": 1}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try lbServer(["--check-config", "--config", path])
        XCTAssertEqual(r.status, 2)
        for expected in ["3 problems", "bogus: unknown key", "routing.algorithm: \"nope\" is not one of ring, maglev, rendezvous",
                         "servers[0].port: 0 is out of range 1-65535"] {
            XCTAssertTrue(r.stderr.contains(expected), "missing \(expected) in:\n\(r.stderr)")
        }
    }

    func testCheckConfigResolvesHostsAndBuildsTheTable() throws {
        let r = try lbServer(["--check-config", "--backend", "no-such-host.invalid:80"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("servers[0].host: cannot resolve \"no-such-host.invalid\""), r.stderr)
    }

    func testBadFlagsAreNamed() throws {
        let r = try lbServer(["--backend", "127.0.0.1:notaport", "--algorithm", "rng"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--backend"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--algorithm"), r.stderr)
    }

    func testWithoutConfigOrBackendsItSaysWhatToGive() throws {
        let r = try lbServer([])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--config") && r.stderr.contains("--backend"), r.stderr)
    }

    func testVersionPrintsTheVersion() throws {
        let r = try lbServer(["--version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertFalse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }
}

import XCTest

@testable import LBServer

/// The admin API's pure parts: routes, query, bodies and the token check, without sockets.
final class AdminRequestTests: XCTestCase {
    func testRoutesMatchExactPathsAndDecodeTheID() {
        XCTAssertEqual(AdminRoute.match("/api/servers"), .servers)
        XCTAssertEqual(AdminRoute.match("/manage/servers"), .manageServers)
        XCTAssertEqual(AdminRoute.match("/manage/servers/%5B%3A%3A1%5D%3A80"), .manageServer(id: "[::1]:80"))
        XCTAssertNil(AdminRoute.match("/api/servers/"))
        XCTAssertNil(AdminRoute.match("/manage/servers/a/b"))
        XCTAssertNil(AdminRoute.match("/manage/servers/"))
        XCTAssertEqual(AdminRoute.manageServer(id: "x").allowed.map(\.token), ["PATCH", "DELETE"])
    }

    func testQueryAcceptsOnlyDryRun() throws {
        XCTAssertTrue(try ManageQuery(parsing: "dry_run=1").dryRun)
        XCTAssertTrue(try ManageQuery(parsing: "dry_run").dryRun)
        XCTAssertFalse(try ManageQuery(parsing: "dry_run=false").dryRun)
        XCTAssertFalse(try ManageQuery(parsing: "").dryRun)
        XCTAssertThrowsError(try ManageQuery(parsing: "dryrun=1"))
        XCTAssertThrowsError(try ManageQuery(parsing: "dry_run=yes"))
    }

    func testAddServerBodyFollowsTheConfigFileRules() throws {
        let spec = try AdminJSON.addServer(Array(#"{"host":"127.0.0.1","port":8001}"#.utf8))
        XCTAssertEqual(spec.id, "127.0.0.1:8001")
        XCTAssertEqual(spec.weight, 1)
        for (body, field) in [
            (#"{"host":"127.0.0.1","port":0}"#, "port"), (#"{"host":"127.0.0.1","port":1,"weight":-1}"#, "weight"),
            (#"{"host":"","port":1}"#, "host"), (#"{"host":"h","port":1,"x":1}"#, "x"), ("{", "body"), ("", "body"),
        ] {
            XCTAssertThrowsError(try AdminJSON.addServer(Array(body.utf8)), body) { error in
                XCTAssertEqual((error as? AdminError)?.field, field, body)
                XCTAssertEqual((error as? AdminError)?.status, 400, body)
            }
        }
    }

    func testPatchBodyNeedsWeightOrAKnownState() throws {
        XCTAssertEqual(try AdminJSON.patchServer(Array(#"{"state":"draining"}"#.utf8)), ServerPatch(state: .draining))
        XCTAssertEqual(try AdminJSON.patchServer(Array(#"{"weight":3}"#.utf8)), ServerPatch(weight: 3))
        XCTAssertThrowsError(try AdminJSON.patchServer(Array("{}".utf8)))
        XCTAssertThrowsError(try AdminJSON.patchServer(Array(#"{"state":"down"}"#.utf8)))
    }

    func testBodiesRejectKeysOutsideTheirListByName() {
        // A server added at run time takes a config server's keys except `health_check`.
        XCTAssertThrowsError(try AdminJSON.addServer(Array(#"{"host":"h","port":1,"health_check":{}}"#.utf8))) {
            XCTAssertEqual(($0 as? AdminError)?.field, "health_check")
            XCTAssertEqual(($0 as? AdminError)?.message, "unknown key; valid keys here are id, host, port, weight")
        }
        XCTAssertThrowsError(try AdminJSON.patchServer(Array(#"{"wieght":3}"#.utf8))) {
            XCTAssertEqual(($0 as? AdminError)?.field, "wieght")
            XCTAssertEqual(($0 as? AdminError)?.message, "unknown key (did you mean weight?)")
        }
    }

    func testBearerTokenCheck() throws {
        XCTAssertNoThrow(try AdminAuth.check(nil, token: nil))
        XCTAssertNoThrow(try AdminAuth.check("Bearer abc", token: "abc"))
        XCTAssertNoThrow(try AdminAuth.check("bearer abc", token: "abc"))
        for header in [nil, "Bearer ab", "Bearer abcd", "Basic abc", "abc", "Bearer "] as [String?] {
            XCTAssertThrowsError(try AdminAuth.check(header, token: "abc"), header ?? "nil") { error in
                XCTAssertEqual((error as? AdminError)?.status, 401)
            }
        }
        XCTAssertTrue(AdminAuth.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(AdminAuth.constantTimeEqual([1, 2], [1, 2, 0]))
        XCTAssertFalse(AdminAuth.constantTimeEqual([], [0]))
    }
}

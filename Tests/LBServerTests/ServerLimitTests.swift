import XCTest

@testable import LBServer

/// `max_connections` / `max_queue`: which limit a server gets, and each worker's share of it.
final class ServerLimitTests: XCTestCase {
    func testAServersOwnLimitOverridesTheDefaultAndNoneMeansUnlimited() throws {
        let json = #"""
            {"servers": [{"id": "a", "host": "127.0.0.1", "port": 1, "max_connections": 8, "max_queue": 2},
                         {"id": "b", "host": "127.0.0.1", "port": 2},
                         {"id": "c", "host": "127.0.0.1", "port": 3, "max_queue": 7}],
             "limits": {"server_max_queue": 50}}
            """#
        let config = try ConfigLoader.parse(data: Data(json.utf8), source: "test.json")
        XCTAssertEqual(config.connectionLimit(forServer: "a"), LBConfig.ServerLimit(maxConnections: 8, maxQueue: 2))
        XCTAssertNil(config.connectionLimit(forServer: "b"), "no max_connections anywhere: no limit")
        XCTAssertNil(config.connectionLimit(forServer: "c"), "a queue alone limits nothing")

        let defaultJSON = #"{"servers": [{"id": "a", "host": "127.0.0.1", "port": 1}], "limits": {"server_max_connections": 4}}"#
        let withDefault = try ConfigLoader.parse(data: Data(defaultJSON.utf8), source: "test.json")
        XCTAssertEqual(
            withDefault.connectionLimit(forServer: "a"), LBConfig.ServerLimit(maxConnections: 4, maxQueue: 1024))
    }

    func testBadLimitsNameTheirField() {
        let json = #"{"servers": [{"host": "127.0.0.1", "port": 1, "max_connections": 0}]}"#
        XCTAssertThrowsError(try ConfigLoader.parse(data: Data(json.utf8), source: "test.json")) { error in
            XCTAssertTrue("\(error)".contains("servers[0].max_connections"), "\(error)")
        }
        let queue = #"{"servers": [], "limits": {"server_max_queue": -1}}"#
        XCTAssertThrowsError(try ConfigLoader.parse(data: Data(queue.utf8), source: "test.json")) { error in
            XCTAssertTrue("\(error)".contains("limits.server_max_queue"), "\(error)")
        }
    }

    func testEachWorkerEnforcesItsShareRoundedUpAndAtLeastOne() {
        let limit = LBConfig.ServerLimit(maxConnections: 10, maxQueue: 5)
        XCTAssertEqual(WorkerConnectionLimit(limit, workers: 1).connections, 10)
        XCTAssertEqual(WorkerConnectionLimit(limit, workers: 4).connections, 3)
        XCTAssertEqual(WorkerConnectionLimit(limit, workers: 4).queue, 2)
        XCTAssertEqual(WorkerConnectionLimit(LBConfig.ServerLimit(maxConnections: 1, maxQueue: 0), workers: 8).connections, 1)
        XCTAssertEqual(WorkerConnectionLimit(LBConfig.ServerLimit(maxConnections: 1, maxQueue: 0), workers: 8).queue, 0)
    }
}

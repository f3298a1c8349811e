import LBCore
import XCTest

@testable import LBServer

/// DNS records to servers: ids, ports, SRV priority groups and weights.
final class DNSServerSetTests: XCTestCase {
    private typealias Target = DNSServerSet.Target

    func testEachAddressIsAServerOfWeightOneKeyedByAddressAndPort() {
        let servers = DNSServerSet.servers(addresses: ["10.0.0.2", "10.0.0.1", "fd00::1", "10.0.0.1"], port: 8080)
        XCTAssertEqual(servers.map(\.id), ["10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:8080"])
        XCTAssertEqual(servers.map(\.host), ["10.0.0.1", "10.0.0.2", "fd00::1"])
        XCTAssertEqual(Set(servers.map(\.weight)), [1])
    }

    func testOnlyTheBestPriorityWithAddressesIsUsed() {
        let targets = [
            Target(priority: 10, weight: 5, port: 80, host: "a"), Target(priority: 10, weight: 1, port: 81, host: "b"),
            Target(priority: 20, weight: 1, port: 82, host: "c"),
        ]
        let all = ["a": ["10.0.0.1"], "b": ["10.0.0.2"], "c": ["10.0.0.3"]]
        XCTAssertEqual(
            DNSServerSet.servers(targets: targets, addresses: all).map { "\($0.id)@\($0.weight)" },
            ["10.0.0.1:80@5", "10.0.0.2:81@1"])
        // The backups take over only when no target of the best priority resolves.
        XCTAssertEqual(
            DNSServerSet.servers(targets: targets, addresses: ["c": ["10.0.0.3"]]).map(\.id), ["10.0.0.3:82"])
        XCTAssertEqual(DNSServerSet.servers(targets: targets, addresses: [:]), [])
        XCTAssertEqual(
            DNSServerSet.servers(
                targets: [Target(priority: 0, weight: 0, port: 0, host: ".")], addresses: [".": ["x"]]),
            [], "target \".\": the service is decidedly not available")
    }

    func testEveryAddressOfATargetTakesItsWeightAndSharedAddressesAddUp() {
        let targets = [
            Target(priority: 1, weight: 3, port: 80, host: "a"), Target(priority: 1, weight: 2, port: 80, host: "b"),
        ]
        let servers = DNSServerSet.servers(
            targets: targets, addresses: ["a": ["10.0.0.1", "10.0.0.2"], "b": ["10.0.0.2"]])
        XCTAssertEqual(servers.map { "\($0.id)@\($0.weight)" }, ["10.0.0.1:80@3", "10.0.0.2:80@5"])
    }

    func testSRVWeightsKeepTheirProportionsWithinLBsRange() {
        XCTAssertEqual(DNSServerSet.lbWeights([0, 1, 10, 1000]), [1, 1, 10, 1000])
        XCTAssertEqual(DNSServerSet.lbWeights([65535, 32768, 6, 0]), [1000, 500, 1, 1])
        XCTAssertEqual(DNSServerSet.lbWeights([0, 0]), [1, 1], "all zero: an equal share each")
        XCTAssertEqual(DNSServerSet.lbWeights([]), [])
    }
}

import Foundation
import XCTest

/// Every case of the http-desync-guardian corpus (`shared/conformance/desync-guardian/*.yaml`, beside the clone),
/// turned into raw bytes by `Tests/conformance/desync_cases.py`, sent through the real proxy to a `SpyBackend`:
/// - Severe: answered 4xx/5xx by the proxy itself, connection closed, nothing reaches the backend.
/// - Compliant: forwarded, every one; the backend receives it and the client gets the backend's answer.
/// - Acceptable / Ambiguous: what happened is recorded and printed, not asserted.
/// - Every case is answered or cleanly closed within `caseTimeout`.
///
/// The corpus runs once per transport (the first test to need it), through one proxy; each test then asserts on its
/// tier. This class sends the cases to a plain listener; `DesyncCorpusOverTLSTests` runs the same tests through an
/// HTTPS listener.
class DesyncCorpusTests: IntegrationTestCase {
    /// How the cases reach lb.
    enum Transport: String, Sendable {
        /// A plain listener, directly.
        case plain
        /// An HTTPS listener, through `TLSRelay` (`Tests/conformance/tls_relay.py`): the client and the follow-ups
        /// speak plain bytes to the relay, which carries each connection over its own TLS connection to lb and passes
        /// every close on, so the outcomes read the same as on a plain connection.
        case tls
    }

    /// Overridden by `DesyncCorpusOverTLSTests`.
    class var transport: Transport { .plain }

    private struct Case: Decodable, Sendable {
        let file: String
        let name: String
        let tier: String
        let hex: String

        var label: String { "\(file) / \(name) [\(tier)]" }

        var bytes: [UInt8] {
            var out: [UInt8] = []
            var iterator = hex.utf8.makeIterator()
            while let high = iterator.next(), let low = iterator.next() {
                out.append(Self.nibble(high) << 4 | Self.nibble(low))
            }
            return out
        }

        private static func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    }

    private enum Outcome: Sendable, CustomStringConvertible {
        /// The backend answered `status` (0: the backend got the head and waits for a body the case does not send).
        case forwarded(status: Int)
        case rejected(status: Int)
        /// The connection closed without any response and nothing reached the backend.
        case closedSilently
        case unanswered(String)

        var description: String {
            switch self {
            case .forwarded(0): return "forwarded (head reached the backend; body not sent by the case)"
            case .forwarded(let status): return "forwarded (\(status))"
            case .rejected(let status): return "rejected (\(status))"
            case .closedSilently: return "closed without a response"
            case .unanswered(let why): return "unanswered: \(why)"
            }
        }

        var bucket: String {
            switch self {
            case .forwarded: return "forwarded"
            case .rejected, .closedSilently: return "rejected"
            case .unanswered: return "unanswered"
            }
        }
    }

    private static let caseTimeout: TimeInterval = 2
    /// The outcomes, per transport.
    private static let results = Locked<[Transport: [(Case, Outcome)]]>([:])

    func testSevereCasesAreRejectedAndNeverForwarded() throws {
        let failures = try results().filter { $0.0.tier == "Severe" }.compactMap { item, outcome -> String? in
            if case .rejected = outcome { return nil }
            return "\(item.label): \(outcome)"
        }
        XCTAssertTrue(
            failures.isEmpty, "\(failures.count) Severe cases not rejected:\n" + failures.joined(separator: "\n"))
    }

    func testCompliantCasesAreForwarded() throws {
        var failures: [String] = []
        for (item, outcome) in try results() where item.tier == "Compliant" {
            if case .forwarded = outcome { continue }
            failures.append("\(item.label): \(outcome)")
        }
        XCTAssertTrue(
            failures.isEmpty, "\(failures.count) Compliant cases not forwarded:\n" + failures.joined(separator: "\n"))
    }

    /// Acceptable and Ambiguous cases may go either way; none may be left hanging. Prints the per-tier counts.
    func testEveryCaseIsAnsweredOrClosedAndCountsArePrinted() throws {
        let results = try results()
        var counts: [String: [String: Int]] = [:]
        for (item, outcome) in results { counts[item.tier, default: [:]][outcome.bucket, default: 0] += 1 }
        print("desync corpus over \(Self.transport.rawValue): \(results.count) cases")
        for tier in ["Compliant", "Acceptable", "Ambiguous", "Severe"] {
            let c = counts[tier] ?? [:]
            print(
                "  \(tier): forwarded \(c["forwarded"] ?? 0), rejected \(c["rejected"] ?? 0), "
                    + "unanswered \(c["unanswered"] ?? 0)")
        }
        print("Acceptable/Ambiguous outcomes:")
        for (item, outcome) in results where item.tier == "Acceptable" || item.tier == "Ambiguous" {
            print("  \(item.label): \(outcome)")
        }
        let hanging = results.filter { $0.1.bucket == "unanswered" }.map { "\($0.0.label): \($0.1)" }
        XCTAssertTrue(hanging.isEmpty, "\(hanging.count) cases left unanswered:\n" + hanging.joined(separator: "\n"))
    }

    /// The outcome of every case, computed on first use.
    private func results() throws -> [(Case, Outcome)] {
        let transport = Self.transport
        if let cached = Self.results.current[transport] { return cached }
        let cases = try loadCases()
        // Not cached when empty: every test that needs the corpus then fails, not just the first.
        guard !cases.isEmpty else {
            XCTFail("no desync cases loaded")
            return []
        }
        let spy = try SpyBackend()
        let port: Int
        switch transport {
        case .plain: port = try startProxy(backends: [spy.address]).proxyPort
        case .tls: port = try startProxyBehindTLSRelay(backends: [spy.address])
        }
        var results: [(Case, Outcome)] = []
        for item in cases { results.append((item, try run(item, proxyPort: port, spy: spy))) }
        Self.results.withLock { $0[transport] = results }
        return results
    }

    /// Starts lb with one HTTPS listener (a throw-away `TestCertificates` leaf for `a.test`) and a `TLSRelay` to it,
    /// and returns the relay's plain port. Every connection of a case, and every follow-up, goes through the relay:
    /// the follow-up is the proof that lb is done with what came before it, so it takes the same path (the TLS
    /// listener and its connection code) rather than a plain listener's. Skips without openssl.
    private func startProxyBehindTLSRelay(backends: [String]) throws -> Int {
        guard ManagedProcess.resolveExecutable("openssl") != nil else {
            throw XCTSkip("openssl is not installed (Debian package openssl); the TLS certificates need it")
        }
        let pki = try TestCertificates.make()
        addTeardownBlock { pki.remove() }
        let tls: [String: Any] = ["certificates": [["cert": pki.cert("a"), "key": pki.key("a")]]]
        let lb = try LBBinaries.startServer(
            backends: backends,
            configFile: try writeConfigFile(["listeners": [["address": "127.0.0.1:0", "tls": tls]]]),
            listen: nil, proxyKind: .proxyTLS)
        return try TLSRelay.start(upstreamPort: lb.proxyPort, caCert: pki.caCert, serverName: "a.test").port
    }

    // MARK: Running one case

    /// Sends one case on a fresh connection. "Forwarded" means the spy received new bytes and the client got the
    /// spy's answer; "rejected" means a 4xx/5xx generated by the proxy (no `X-Backend: spy`) and a closed connection
    /// with nothing sent upstream. "Nothing" is checked once a follow-up request on a new connection has reached
    /// the spy (`SpyBackend.followUp`), not after a fixed wait.
    /// `proxyPort` is lb's port, or the relay's (`Transport.tls`).
    private func run(_ item: Case, proxyPort: Int, spy: SpyBackend) throws -> Outcome {
        let mark = spy.mark()
        let before = spy.receivedBytes.count
        let requestsBefore = spy.requestCount
        let connection = try RawHTTPConnection(port: proxyPort)
        defer { connection.close() }
        try connection.send(item.bytes)
        let isHead = item.bytes.starts(with: Array("HEAD ".utf8))
        let response: HTTPResponse
        do {
            response = try connection.readResponse(headRequest: isHead, timeout: Self.caseTimeout)
        } catch HarnessError.closedBeforeComplete(let partial) where partial.isEmpty {
            let arrived = try spy.followUp(since: mark, proxyPort: proxyPort)
            return arrived.isEmpty ? .closedSilently : .unanswered("closed after forwarding: \(arrived)")
        } catch HarnessError.timedOut(_, let partial)
            where partial.isEmpty && spy.requestCount == requestsBefore
            && spy.receivedBytes.count > before
        {
            // A body the case does not send (e.g. Content-Length: 4000000): the proxy forwarded the head and streams.
            return .forwarded(status: 0)
        } catch {
            return .unanswered("\(error)")
        }
        let fromSpy = response.header("X-Backend") == "spy"
        if fromSpy {
            // The spy answers only once it has the whole request, so its bytes are all there by now.
            return spy.receivedBytes.count > before ? .forwarded(status: response.status) : .unanswered("no bytes?")
        }
        guard response.status >= 400 else { return .unanswered("proxy answered \(response.status) by itself") }
        let closed = connection.isClosedByPeer(timeout: Self.caseTimeout)
        let arrived = try spy.followUp(since: mark, proxyPort: proxyPort)
        if !arrived.isEmpty {
            return .unanswered("\(response.status) but something reached the backend: \(arrived)")
        }
        return closed ? .rejected(status: response.status) : .unanswered("\(response.status) left the connection open")
    }

    /// Runs `desync_cases.py` on the corpus. Skips when the corpus (kept outside the clone) or python3/PyYAML is
    /// missing.
    private func loadCases() throws -> [Case] {
        let root = LBBinaries.packageRoot
        let corpus = root.deletingLastPathComponent().appendingPathComponent("shared/conformance/desync-guardian").path
        guard FileManager.default.fileExists(atPath: corpus) else {
            throw XCTSkip("desync corpus not found at \(corpus) (CI puts shared/ beside the clone)")
        }
        guard ManagedProcess.resolveExecutable("python3") != nil else { throw XCTSkip("python3 is not installed") }
        let script = root.appendingPathComponent("Tests/conformance/desync_cases.py").path
        let result = ManagedProcess.run("python3", [script, corpus], timeout: 60)
        if result.status != 0 && result.stderr.contains("No module named 'yaml'") {
            throw XCTSkip("PyYAML is not installed: \(result.stderr)")
        }
        guard result.status == 0 else {
            XCTFail("desync_cases.py failed (\(result.status)): \(result.stderr)")
            return []
        }
        let cases = try JSONDecoder().decode([Case].self, from: result.stdout)
        XCTAssertGreaterThan(cases.count, 100, "the corpus should hold well over 100 cases")
        return cases
    }
}

/// The same corpus and the same assertions, through an HTTPS listener: each case travels over TLS (via `TLSRelay`),
/// so lb's TLS read path feeds the HTTP parser instead of plain reads. Skips without python3 or openssl.
final class DesyncCorpusOverTLSTests: DesyncCorpusTests {
    override class var transport: Transport { .tls }

    // SwiftPM's test discovery on Linux lists only the test methods a class declares, not inherited ones.
    override func testSevereCasesAreRejectedAndNeverForwarded() throws {
        try super.testSevereCasesAreRejectedAndNeverForwarded()
    }

    override func testCompliantCasesAreForwarded() throws { try super.testCompliantCasesAreForwarded() }

    override func testEveryCaseIsAnsweredOrClosedAndCountsArePrinted() throws {
        try super.testEveryCaseIsAnsweredOrClosedAndCountsArePrinted()
    }
}

import COpenSSL
import Dispatch
import LBTLS
import XCTest

/// Session resumption: a client comes back with what the first connection gave it, on a new `TLSSession` of
/// the same context (as it would on another worker).
final class TLSResumptionTests: TLSTestCase {
    /// A full handshake, then a second connection offering its session; returns the second connection.
    private func reconnect(
        _ context: TLSServerContext, secondContext: TLSServerContext? = nil, serverName: String? = nil,
        maxVersion: Int32 = 0, file: StaticString = #filePath, line: UInt = #line
    ) throws -> TestConnection {
        let first = try connect(context, .init(serverName: serverName, maxVersion: maxVersion))
        first.handshake(file: file, line: line)
        XCTAssertFalse(first.server.isResumed, file: file, line: line)
        let session = try XCTUnwrap(first.client.session(), file: file, line: line)
        defer { SSL_SESSION_free(session) }
        let second = try connect(
            secondContext ?? context, .init(serverName: serverName, maxVersion: maxVersion, session: session))
        second.handshake(file: file, line: line)
        return second
    }

    func testTLS13TicketResumesOnAnotherSessionOfTheSameContext() throws {
        let second = try reconnect(context(config(sessionCacheSize: 0)))
        XCTAssertEqual(second.server.protocolVersion, .tls1_3)
        XCTAssertTrue(second.server.isResumed)
        XCTAssertTrue(second.client.isResumed)
    }

    func testTLS12TicketResumes() throws {
        let second = try reconnect(context(config(sessionCacheSize: 0)), maxVersion: TLS1_2_VERSION)
        XCTAssertEqual(second.server.protocolVersion, .tls1_2)
        XCTAssertTrue(second.server.isResumed)
    }

    func testSessionCacheResumesWithTicketsOff() throws {
        let context = try context(config(sessionTickets: false))
        XCTAssertTrue(try reconnect(context).server.isResumed, "TLS 1.3: stateful ticket naming a cached session")
        XCTAssertTrue(try reconnect(context, maxVersion: TLS1_2_VERSION).server.isResumed, "TLS 1.2: session ID")
    }

    func testNoResumptionWithTicketsAndCacheOff() throws {
        let context = try context(config(sessionTickets: false, sessionCacheSize: 0))
        XCTAssertFalse(try reconnect(context).server.isResumed)
        XCTAssertFalse(try reconnect(context, maxVersion: TLS1_2_VERSION).server.isResumed)
    }

    /// SNI moves the session to another certificate's SSL_CTX; its tickets must still open.
    func testTicketFromASNISelectedCertificateResumes() throws {
        let second = try reconnect(context(), serverName: "a.test")
        XCTAssertTrue(second.server.isResumed)
        XCTAssertEqual(second.client.peerCommonName, "a.test")
    }

    /// Ticket keys are per context: a rebuilt context (a restart) falls back to a full handshake, not a failure.
    func testAnotherContextDoesFullHandshake() throws {
        let second = try reconnect(context(), secondContext: context())
        XCTAssertFalse(second.server.isResumed)
    }

    /// Workers share one context: sessions on several threads at once handshake, and each resumes the ticket
    /// another thread's session issued.
    func testSessionsOnSeveralThreadsShareOneContextAndResumeEachOthersTickets() throws {
        let context = try context()
        let caFile = certificates.caFile
        let first = try connect(context, .init(serverName: "a.test"))
        first.handshake()
        nonisolated(unsafe) let ticket = try XCTUnwrap(first.client.session())
        defer { SSL_SESSION_free(ticket) }
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<10 {
                let options = TestClient.Options(serverName: "a.test", session: ticket)
                guard let connection = try? TestConnection(context, caFile: caFile, options) else {
                    return XCTFail("cannot make a session")
                }
                connection.handshake()
                XCTAssertTrue(connection.server.isResumed)
            }
        }
    }
}

import COpenSSL
import Foundation
import LBTLS
import XCTest

/// Session-ticket keys: the key file's rules, and resumption between contexts that share keys (two lb processes
/// reading one file, or one process across a reload), through a rotation.
final class TLSTicketKeysTests: TLSTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = NSTemporaryDirectory() + "lb-ticket-keys-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    /// A key of 80 bytes whose every byte is `seed`, in base64.
    private func key(_ seed: UInt8) -> String { Data(repeating: seed, count: 80).base64EncodedString() }

    private func keyFile(_ lines: [String], name: String = "keys") throws -> String {
        let path = "\(directory!)/\(name)"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func context(keyFile: String?, keys: TLSTicketKeys? = nil) throws -> TLSServerContext {
        var c = config(sessionCacheSize: 0)  // tickets only: a resumption proves the ticket was opened
        c.ticketKeyFile = keyFile
        return try TLSServerContext(config: c, ticketKeys: keys)
    }

    /// A full handshake on `first`, then a connection to `second` offering the session: whether it resumed.
    private func resumes(from first: TLSServerContext, on second: TLSServerContext, maxVersion: Int32 = 0) throws
        -> Bool
    {
        let a = try connect(first, .init(maxVersion: maxVersion))
        a.handshake()
        XCTAssertFalse(a.server.isResumed)
        let session = try XCTUnwrap(a.client.session())
        defer { SSL_SESSION_free(session) }
        let b = try connect(second, .init(maxVersion: maxVersion, session: session))
        b.handshake()
        return b.server.isResumed
    }

    func testTwoContextsReadingOneKeyFileResumeEachOthersSessions() throws {
        let file = try keyFile([key(1), key(2), key(3)])
        let a = try context(keyFile: file)
        let b = try context(keyFile: file)
        XCTAssertTrue(try resumes(from: a, on: b), "TLS 1.3")
        XCTAssertTrue(try resumes(from: b, on: a, maxVersion: TLS1_2_VERSION), "TLS 1.2")
        // Without the file, each context has keys of its own.
        XCTAssertFalse(try resumes(from: try context(keyFile: nil), on: try context(keyFile: nil)))
    }

    func testRandomKeysGivenToANewContextKeepSessionsResumable() throws {
        let keys = try TLSTicketKeys.random()
        XCTAssertTrue(try resumes(from: try context(keyFile: nil, keys: keys), on: try context(keyFile: nil, keys: keys)))
        XCTAssertNil(keys.file)
    }

    func testAHotUpgradesSuccessorOpensThePreviousProcesssTicketsForTwoUpgrades() throws {
        // Each process of a chain of upgrades gets its predecessor's keys, as the hand-off carries them.
        let first = try TLSTicketKeys.random()
        let second = try TLSTicketKeys.succeeding(first.exportForSuccessor())
        let third = try TLSTicketKeys.succeeding(second.exportForSuccessor())
        let fourth = try TLSTicketKeys.succeeding(third.exportForSuccessor())
        let contexts = try [first, second, third, fourth].map { try context(keyFile: nil, keys: $0) }
        XCTAssertEqual(second.count, 2)
        XCTAssertEqual(fourth.count, 1 + TLSTicketKeys.keysCarriedOverUpgrades, "old keys do not pile up")
        XCTAssertTrue(try resumes(from: contexts[0], on: contexts[1]), "TLS 1.3, one upgrade")
        XCTAssertTrue(try resumes(from: contexts[0], on: contexts[1], maxVersion: TLS1_2_VERSION), "TLS 1.2")
        XCTAssertTrue(try resumes(from: contexts[0], on: contexts[2]), "two upgrades")
        XCTAssertFalse(try resumes(from: contexts[0], on: contexts[3]), "three upgrades: that key is gone")
        XCTAssertTrue(try resumes(from: contexts[2], on: contexts[3]))
        // The successor seals with a fresh key of its own, which the previous process cannot open.
        XCTAssertFalse(try resumes(from: contexts[1], on: contexts[0]))
        XCTAssertNotEqual(second.exportForSuccessor()[0], first.exportForSuccessor()[0])
        XCTAssertEqual(second.exportForSuccessor()[1], first.exportForSuccessor()[0])
    }

    func testRotationKeepsEveryInstanceAbleToOpenTheOthersTickets() throws {
        // Instance A has rotated ([2, 3, 4]: sealing with 3), instance B not yet ([1, 2, 3]: sealing with 2).
        let old = try context(keyFile: try keyFile([key(1), key(2), key(3)], name: "old"))
        let new = try context(keyFile: try keyFile([key(2), key(3), key(4)], name: "new"))
        XCTAssertTrue(try resumes(from: old, on: new), "a ticket sealed with 2 opens where 2 is the previous key")
        XCTAssertTrue(try resumes(from: new, on: old), "a ticket sealed with 3 opens where 3 is the next key")
        // After two rotations the first key is gone everywhere.
        let later = try context(keyFile: try keyFile([key(3), key(4), key(5)], name: "later"))
        XCTAssertFalse(try resumes(from: old, on: later), "key 2 is no longer in the file")
        XCTAssertTrue(try resumes(from: new, on: later))
    }

    func testATLS13ResumptionIssuesAFreshTicketAndTheOfferedOneStaysUsable() throws {
        let file = try keyFile([key(1), key(2), key(3)])
        let server = try context(keyFile: file)
        let first = try connect(server)
        first.handshake()
        let ticket = try XCTUnwrap(first.client.session())
        defer { SSL_SESSION_free(ticket) }
        for i in 0..<3 {
            let again = try connect(server, .init(session: ticket))
            again.handshake()
            XCTAssertTrue(again.server.isResumed, "#\(i)")
            let fresh = try XCTUnwrap(again.client.session())
            defer { SSL_SESSION_free(fresh) }
            XCTAssertNotEqual(fresh, ticket, "#\(i): a new ticket came with the resumed handshake")
            XCTAssertEqual(SSL_SESSION_is_resumable(fresh), 1)
        }
    }

    func testAKeyFileNeedsThreeBase64KeysOfEightyBytesAndNamesTheLine() throws {
        func problem(_ lines: [String]) throws -> TLSConfigError? {
            let path = try keyFile(lines, name: UUID().uuidString)
            do {
                _ = try TLSTicketKeys.load(file: path)
                return nil
            } catch {
                XCTAssertEqual(error.file, path)
                return error
            }
        }
        let two = try XCTUnwrap(try problem([key(1), key(2)]))
        XCTAssertEqual(two.problem, .invalidTicketKeys)
        XCTAssertTrue(two.description.contains("holds 2 keys; it needs at least 3"), two.description)

        let short = try XCTUnwrap(try problem(["# keys for the edge", key(1), "", Data(count: 48).base64EncodedString(), key(3)]))
        XCTAssertTrue(short.description.contains("line 4: expected 80 bytes in base64"), short.description)
        let garbage = try XCTUnwrap(try problem([key(1), "not base64!", key(3)]))
        XCTAssertTrue(garbage.description.contains("line 2"), garbage.description)

        XCTAssertNil(try problem(["# comment", key(1), "  \(key(2))  ", key(3), key(4)]))
        XCTAssertEqual(try TLSTicketKeys.load(file: try keyFile([key(1), key(2), key(3), key(4)])).count, 4)

        XCTAssertThrowsError(try TLSTicketKeys.load(file: "\(directory!)/missing")) { error in
            XCTAssertEqual((error as? TLSConfigError)?.problem, .unreadableFile)
        }
    }
}

import LBTLS
import XCTest

/// A `TestClient` and a `TLSSession` joined in memory: `pump()` carries ciphertext both ways, the way the
/// libuv layer will, calling `readPlaintext` after every feed and `takeCiphertext` after every call.
final class TestConnection {
    let client: TestClient
    let server: TLSSession
    /// Plaintext the server read.
    var serverReceived: [UInt8] = []
    /// The last `readPlaintext` result.
    private(set) var serverResult: TLSReadResult = .wantMoreInput
    /// Feed the server this many bytes at a time (1 checks that any split of the ciphertext works).
    var feedChunk = Int.max

    init(_ context: TLSServerContext, caFile: String, _ options: TestClient.Options = TestClient.Options()) throws {
        client = TestClient(caFile: caFile, options)
        server = try TLSSession(context: context)
    }

    var serverFailure: TLSError? {
        if case .failed(let error) = serverResult { return error }
        return nil
    }

    /// Carries bytes until neither side has any to send.
    func pump(file: StaticString = #filePath, line: UInt = #line) {
        for _ in 0..<10_000 {
            client.drive()
            let toServer = client.takeCiphertext()
            var start = 0
            while start < toServer.count {
                let end = min(toServer.count, start + min(feedChunk, toServer.count))
                toServer[start..<end].withUnsafeBytes { server.feed(ciphertext: $0) }
                readServer()
                start = end
            }
            var toClient: [UInt8] = []
            server.takeCiphertext(into: &toClient)
            XCTAssertFalse(server.hasCiphertext, "takeCiphertext leaves nothing behind", file: file, line: line)
            if !toClient.isEmpty { client.feed(toClient) }
            if toServer.isEmpty && toClient.isEmpty {
                client.drive()
                return
            }
        }
        XCTFail("the two sides kept talking for 10,000 rounds", file: file, line: line)
    }

    private func readServer() {
        if case .failed = serverResult { return }
        serverResult = server.readPlaintext(into: &serverReceived)
    }

    /// Pumps, then asserts that both sides finished the handshake.
    func handshake(file: StaticString = #filePath, line: UInt = #line) {
        pump(file: file, line: line)
        XCTAssertTrue(server.isHandshakeComplete, "server: \(serverResult)", file: file, line: line)
        XCTAssertTrue(client.isHandshakeComplete, "client: \(client.failure ?? "-")", file: file, line: line)
    }

    /// Pumps, then asserts that the server refused: failed with an error, and the client saw an alert.
    @discardableResult
    func refusal(file: StaticString = #filePath, line: UInt = #line) -> TLSError? {
        pump(file: file, line: line)
        XCTAssertFalse(server.isHandshakeComplete, file: file, line: line)
        XCTAssertNotNil(serverFailure, "server result: \(serverResult)", file: file, line: line)
        XCTAssertTrue(client.failed, "the client should have received an alert", file: file, line: line)
        return serverFailure
    }

    /// Server → client plaintext.
    func serverSends(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let result = bytes.withUnsafeBytes { server.writePlaintext($0) }
        XCTAssertEqual(result, .done, file: file, line: line)
        pump(file: file, line: line)
    }
}

import ArgumentParser
import Crypto
import Foundation
import LBServer

/// `lb-demo-backend`: the small backend `make run` and the tests put behind the balancer.
struct DemoBackendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lb-demo-backend", abstract: "A demo HTTP/1.1 backend that names itself in every answer.")

    @Option(name: .long, help: "Port to listen on (0 picks a free one).")
    var port: Int = 8001

    @Option(name: .long, help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "Name in every answer (default: HOST:PORT).")
    var name: String?

    @Option(name: .long, help: "Delay before each plain answer, in milliseconds.")
    var delayMs: UInt64 = 0

    @Option(name: .long, help: "Pad plain answers to this many bytes.")
    var size: Int = 0

    func run() throws {
        let options = DemoBackend.Options(name: name ?? "\(host):\(port)", delayMs: delayMs, size: size)
        let backend = try DemoBackend(options: options) { bytes in
            SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        }
        try backend.start(host: host, port: port)
        backend.run()
    }
}

DemoBackendCommand.main()

import Foundation

/// Finds and starts the project's binaries (`lb-server`, `lb-demo-backend`).
///
/// The directory is `$LB_BIN_DIR` if set, else `<package root>/.build/debug` (the package root is found from this
/// file's path). `make test` builds the binaries first; a plain `swift test` may not, hence the explicit check.
enum LBBinaries {
    enum Binary: String, Sendable {
        case server = "lb-server"
        case demoBackend = "lb-demo-backend"
    }

    /// `<package root>`, three directories above `Tests/IntegrationTests/Support/`.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // IntegrationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static var binDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["LB_BIN_DIR"], !dir.isEmpty { return dir }
        return packageRoot.appendingPathComponent(".build/debug").path
    }

    /// The path of `binary` in `directory` (default `binDirectory`).
    /// - Throws: `HarnessError.missingBinary` ("run `swift build` first") if it is not an executable file there.
    static func path(of binary: Binary, in directory: String? = nil) throws -> String {
        let path = (directory ?? binDirectory) + "/" + binary.rawValue
        guard FileManager.default.isExecutableFile(atPath: path) else { throw HarnessError.missingBinary(path: path) }
        return path
    }
}

/// A running `lb-demo-backend` and the port it reported.
struct DemoBackend: Sendable {
    let name: String
    let process: ManagedProcess
    let port: Int
    /// `127.0.0.1:PORT`, the form `lb-server --backend` takes.
    var address: String { "127.0.0.1:\(port)" }
}

/// A running `lb-server` and the ports it reported.
struct LBServerProcess: Sendable {
    let process: ManagedProcess
    let proxyPort: Int
    let adminPort: Int
}

extension LBBinaries {
    /// Starts `lb-demo-backend --port 0 --name NAME [--delay-ms N] [--size BYTES] EXTRA...` and waits for its port.
    static func startDemoBackend(
        name: String,
        delayMs: Int? = nil,
        size: Int? = nil,
        extraArguments: [String] = [],
        timeout: TimeInterval = 10
    ) throws -> DemoBackend {
        var args = ["--port", "0", "--name", name, "--host", "127.0.0.1"]
        if let delayMs { args += ["--delay-ms", String(delayMs)] }
        if let size { args += ["--size", String(size)] }
        let process = try ManagedProcess.start(
            try path(of: .demoBackend), args + extraArguments, name: "backend-\(name)")
        do {
            return DemoBackend(
                name: name, process: process, port: try process.waitForListening(kind: .backend, timeout: timeout))
        } catch {
            process.terminate()
            throw error
        }
    }

    /// Starts `lb-server --listen 127.0.0.1:0 --admin 127.0.0.1:0 --backend ADDR... [--config FILE] EXTRA...` and
    /// waits for both its proxy and admin ports.
    ///
    /// - Parameters:
    ///   - listen: the `--listen` flag; `nil` leaves it out, so the config file's `listeners` stay in force.
    ///   - proxyKind: the listener whose port becomes `proxyPort`: `.proxyTLS` when the (first) listener is HTTPS.
    ///     The ports of other listeners are read with `process.waitForListening(kind:)`.
    static func startServer(
        backends: [String],
        configFile: String? = nil,
        extraArguments: [String] = [],
        listen: String? = "127.0.0.1:0",
        proxyKind: ManagedProcess.ListenerKind = .proxy,
        timeout: TimeInterval = 10
    ) throws -> LBServerProcess {
        var args = ["--admin", "127.0.0.1:0"]
        if let listen { args = ["--listen", listen] + args }
        for backend in backends { args += ["--backend", backend] }
        if let configFile { args += ["--config", configFile] }
        // `make test` runs the whole integration suite a second time with LB_TEST_WORKERS=2.
        if let workers = ProcessInfo.processInfo.environment["LB_TEST_WORKERS"], !workers.isEmpty {
            args += ["--workers", workers]
        }
        let process = try ManagedProcess.start(try path(of: .server), args + extraArguments, name: "lb-server")
        do {
            let proxy = try process.waitForListening(kind: proxyKind, timeout: timeout)
            let admin = try process.waitForListening(kind: .admin, timeout: timeout)
            return LBServerProcess(process: process, proxyPort: proxy, adminPort: admin)
        } catch {
            process.terminate()
            throw error
        }
    }
}

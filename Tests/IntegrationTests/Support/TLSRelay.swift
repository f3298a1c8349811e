import Foundation

/// `Tests/conformance/tls_relay.py` running: a plain TCP port on 127.0.0.1 whose every connection is carried over TLS
/// to a listener of lb, so a test that speaks raw bytes over `RawHTTPConnection` reaches the HTTPS code path.
///
/// Ends pass through as on a plain connection: when lb closes its TLS side (or resets it), the client gets the bytes
/// lb sent and then a FIN; when the client closes, lb gets close_notify and a FIN. A reset from lb arrives as a FIN.
/// Failed handshakes are logged (`tls-relay: ...` in `process.log`) and the client's connection is reset.
struct TLSRelay: Sendable {
    let process: ManagedProcess
    /// The plain port to connect to.
    let port: Int

    /// Starts the relay towards 127.0.0.1:`upstreamPort`, verifying the server as `serverName` against `caCert`.
    /// - Throws: `HarnessError.launchFailed` (no python3: check for it first to skip instead) or `.notListening`.
    static func start(upstreamPort: Int, caCert: String, serverName: String, timeout: TimeInterval = 10) throws
        -> TLSRelay
    {
        guard let python = ManagedProcess.resolveExecutable("python3") else {
            throw HarnessError.launchFailed(command: "python3", underlying: "not found in PATH")
        }
        let script = LBBinaries.packageRoot.appendingPathComponent("Tests/conformance/tls_relay.py").path
        let process = try ManagedProcess.start(
            python, [script, String(upstreamPort), caCert, serverName], name: "tls-relay")
        do {
            return TLSRelay(process: process, port: try process.waitForListening(kind: .backend, timeout: timeout))
        } catch {
            process.terminate()
            throw error
        }
    }
}

import ArgumentParser
import Foundation
import LBCore
import LBServer
import Logging

/// `lb-server`: the load balancer. Flags override the config file; `--backend` flags replace its servers.
struct LBServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lb-server",
        abstract: "A consistent-hashing HTTP/1.1 load balancer.",
        version: LBVersion.current
    )

    @Option(name: .long, help: "Config file (JSON). Not needed when --backend, --etcd or --dns flags are given.")
    var config: String?

    @Option(name: .long, help: "Traffic listen address, HOST:PORT (port 0 picks a free port).")
    var listen: String?

    @Option(name: .long, help: "A backend HOST:PORT[@WEIGHT]; repeat for more. Replaces the config file's servers.")
    var backend: [String] = []

    @Option(name: .long, help: "Admin API listen address, HOST:PORT.")
    var admin: String?

    @Option(name: .long, help: "Balancing algorithm: \(AlgorithmName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var algorithm: String?

    @Option(name: .long, help: "Key hash function: \(KeyHashName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var hash: String?

    @Option(name: .long, help: "Routing key: path, uri, host, header:NAME, cookie:NAME, query:NAME, client-ip.")
    var key: String?

    @Option(name: .long, help: "Worker threads: a number or auto.")
    var workers: String?

    @Option(name: .long, help: "Serve HTTPS on the listen address with this certificate chain (PEM); needs --tls-key.")
    var tlsCert: String?

    @Option(name: .long, help: "The private key (PEM) of --tls-cert.")
    var tlsKey: String?

    @Option(name: .long, help: "Keep the admin API's server changes in this file; re-applied at start and on SIGHUP.")
    var stateFile: String?

    @Option(name: .long, help: ArgumentHelp(
        "Take the servers from etcd: its members' client URLs, comma-separated (http://HOST:PORT,...).",
        valueName: "URL[,URL...]"))
    var etcd: String?

    @Option(name: .long, help: "With --etcd: the cluster name; the servers are the keys under /lb/NAME/servers/.")
    var cluster: String?

    @Option(name: .long, help: ArgumentHelp(
        "Take the servers from DNS: the A/AAAA records of NAME (port from --dns-port), or the SRV records of "
            + "_service._proto.NAME; re-resolved as the TTL says.",
        valueName: "NAME"))
    var dns: String?

    @Option(name: .long, help: ArgumentHelp("With --dns NAME (A/AAAA): the servers' port.", valueName: "N"))
    var dnsPort: String?

    @Flag(name: .long, help: "Validate the configuration, print every problem, and exit (0 when valid).")
    var checkConfig = false

    @Option(name: .long, help: "Serve the control socket (status, hot upgrades) at this Unix socket path.")
    var controlSocket: String?

    @Flag(name: .long, help: ArgumentHelp(
        "Hot upgrade: have the lb-server at --control-socket start this binary with these flags as its successor.",
        discussion: "Exit status: 0 upgraded, 1 failed (the running one keeps serving), 2 invalid flags or config, 3 no lb-server at the socket."))
    var upgrade = false

    @Option(name: .long, help: "With --upgrade: how long the successor's first health checks may take (default 30s).")
    var upgradeTimeout: String?

    /// The successor's mode, given by the running instance when `--upgrade` asks it to start one.
    @Flag(name: .long, help: ArgumentHelp(visibility: .private))
    var takeover = false

    func validate() throws {
        if (upgrade || takeover) && controlSocket == nil {
            throw ValidationError("--upgrade needs --control-socket PATH, the running lb-server's control socket")
        }
        if upgrade && (checkConfig || takeover) {
            throw ValidationError("--upgrade cannot be combined with --check-config")
        }
    }

    mutating func run() throws {
        // Startup code runs once: give back the text pages each startup phase mapped in (argument parsing, config
        // decoding, starting the server), so they do not add up.
        StartupCode.release()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["LB_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
            return handler
        }
        let logger = Logger(label: "lb")
        // A successor first connects to the process it replaces, so that every failure below reaches the
        // operator's `lb-server --upgrade` as well as this log.
        var successor: Successor?
        if takeover, let path = controlSocket {
            do {
                successor = try Successor(controlSocket: path, readinessTimeout: upgradeTimeout)
            } catch {
                FileHandle.standardError.write(Data("lb-server: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        func fail(_ message: String, status: Int32) -> ExitCode {
            FileHandle.standardError.write(Data("lb-server: \(message)\n".utf8))
            successor?.abort(message)
            return ExitCode(status)
        }
        let overrides = CommandLineOverrides(
            listen: listen, admin: admin, backends: backend, algorithm: algorithm, hash: hash, key: key, workers: workers,
            tlsCert: tlsCert, tlsKey: tlsKey, stateFile: stateFile, etcd: etcd, cluster: cluster,
            dns: dns, dnsPort: dnsPort)
        let resolved: LBConfig
        do {
            resolved = try LBConfig.resolve(configPath: config, overrides: overrides)
        } catch {
            throw fail("configuration is invalid:\n\(error)", status: 2)
        }
        StartupCode.release()
        if upgrade, let path = controlSocket {
            // The successor runs with the same flags, in takeover mode.
            var arguments = Array(CommandLine.arguments.dropFirst())
            arguments.removeAll { $0 == "--upgrade" }
            arguments.append("--takeover")
            let status = UpgradeCommand.run(controlSocket: path, successorArguments: arguments, timeout: upgradeTimeout)
            if status != 0 { throw ExitCode(status) }
            return
        }
        if checkConfig {
            let problems = ProxyServer.deepCheck(resolved)
            if !problems.isEmpty {
                let source = config ?? LBConfig.commandLineSource
                FileHandle.standardError.write(Data("lb-server: \(source): \(problems.count) problem(s)\n".utf8))
                for p in problems { FileHandle.standardError.write(Data("  \(p)\n".utf8)) }
                throw ExitCode(2)
            }
            if let warning = ProxyServer.stateFileWarning(resolved) {
                FileHandle.standardError.write(Data("lb-server: warning: \(warning)\n".utf8))
            }
            print("configuration is valid: \(resolved.servers.count) servers, algorithm \(resolved.routing.algorithm.rawValue), key \(resolved.routingKey)")
            return
        }
        do {
            try successor?.requestHandOff()
            let server = try ProxyServer(
                config: resolved, configPath: config, overrides: overrides, logger: logger,
                controlSocket: controlSocket, successor: successor)
            try server.start()
            StartupCode.release()
            let status = server.run()
            if status != 0 { throw ExitCode(status) }
        } catch let error as ExitCode {
            throw error
        } catch {
            throw fail("\(error)", status: 1)
        }
    }
}

LBServerCommand.main()

import ArgumentParser
import DevtsSpawn
import Dispatch
import Foundation

/// `devts demo`: a guided tour with three local nodes, each a separate process.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a 3-node cluster on this machine and walk through joins, a broadcast, a request and a leave.",
        discussion: """
            Runs three `devts node --json` processes on 127.0.0.1 (free ports), the second and third \
            joining through the first, and explains each step with what the nodes printed: the joins, a \
            broadcast reaching everyone, a request answered with a reply, a graceful leave. It ends by \
            itself within seconds and leaves no process behind. Exit code 0 when every step worked, 1 when \
            one did not (the reason is printed; the nodes are stopped). Ctrl-C stops it and its nodes.
            """)

    @Flag(help: "Show the nodes' logs (level info, on stderr) as well.")
    var verbose = false

    @Option(help: ArgumentHelp("How long each step may wait for the nodes, in seconds.", valueName: "SECONDS"))
    var stepTimeout: Double = 10

    func validate() throws {
        guard stepTimeout > 0, stepTimeout <= 600 else { throw ValidationError("--step-timeout must be more than 0 and at most 600") }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let demo = Demo(
            executable: Self.ownExecutable(), logLevel: verbose ? "info" : "error",
            timeout: .milliseconds(Int(stepTimeout * 1000)))
        // Ctrl-C or SIGTERM: stop the nodes, then exit.
        let watcher = DemoSignals { number in
            demo.killAll()
            Output.printError("\ndemo interrupted (signal \(number)); the nodes are stopped")
            Foundation.exit(130)
        }
        defer { withExtendedLifetime(watcher) {} }
        do {
            try await demo.run()
            demo.killAll()
        } catch {
            demo.killAll()
            Output.printError("\ndemo failed: \(error)\nThe nodes it started are stopped.")
            throw ExitCode.failure
        }
    }

    /// This program's own path, to start the nodes with.
    static func ownExecutable() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}

/// Catches SIGINT and SIGTERM for the demo.
final class DemoSignals: Sendable {
    private nonisolated(unsafe) var sources: [any DispatchSourceSignal] = []

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }
}

/// The demo's steps and the nodes it started.
final class Demo: Sendable {
    let executable: String
    let logLevel: String
    let timeout: Duration
    private let children = Locked<[ChildNode]>([])
    private let startedAt = ContinuousClock.now

    init(executable: String, logLevel: String, timeout: Duration) {
        self.executable = executable
        self.logLevel = logLevel
        self.timeout = timeout
    }

    func killAll() {
        for child in children.withLock({ $0 }) { child.kill() }
    }

    private func start(_ name: String, joining address: String? = nil) throws -> ChildNode {
        var arguments = ["--listen", "127.0.0.1:0", "--name", name, "--log-level", logLevel, "--leave-on-eof"]
        if let address { arguments += ["--join", address] }
        say("  $ devts node --json --listen 127.0.0.1:0 --name \(name)\(address.map { " --join \($0)" } ?? "")")
        let child = try ChildNode(label: name, executable: executable, arguments: arguments)
        children.withLock { $0.append(child) }
        return child
    }

    private func say(_ text: String = "") {
        Output(json: false).print(line: text)
    }

    private func step(_ number: Int, _ title: String, _ explanation: String) {
        say()
        say("Step \(number) of 6: \(title)")
        say(explanation.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
    }

    private func pad(_ label: String) -> String { label.padding(toLength: 5, withPad: " ", startingAt: 0) }

    private func short(_ id: String?) -> String { String((id ?? "?").prefix(8)) }

    func run() async throws {
        say("""
            Devts demo: a cluster of three nodes on this machine, each one a separate
            process (`devts node --json`). A node prints one JSON line for each thing
            that happens (formats: devts node --help); the demo reads those lines and
            shows what they mean. "alpha ›" is what node alpha printed, "alpha ‹" a
            command written to its stdin.
            """)

        step(1, "start the first node", """
            Started without --join, it finds no cluster to join and starts a new one.
            Port 0 lets the system pick a free port: the node prints it in its first line.
            """)
        let alpha = try start("alpha")
        let alphaStarted = try await alpha.waitForLine(within: timeout, "its started line") { $0.type == "started" }
        say("  alpha › \(alpha.rawLines.first ?? "")")
        guard let seed = alphaStarted.address, let alphaID = alphaStarted.id else { throw DemoError("alpha's started line has no address") }
        say("  alpha is node \(short(alphaID)) and its cluster port is \(seed): any node can join through it.")

        step(2, "two more nodes join through alpha", """
            A joiner asks alpha for the member list, then connects to every member itself
            (a full mesh), and alpha announces it to the others.
            """)
        let beta = try start("beta", joining: seed)
        let betaStarted = try await beta.waitForLine(within: timeout, "its started line") { $0.type == "started" }
        _ = try await alpha.waitForLine(within: timeout, "beta joining") { $0.type == "member-joined" && $0.id == betaStarted.id }
        say("  alpha › member-joined: beta (\(short(betaStarted.id))) at \(betaStarted.address ?? "?")")
        let gamma = try start("gamma", joining: seed)
        let gammaStarted = try await gamma.waitForLine(within: timeout, "its started line") { $0.type == "started" }
        for (node, other) in [(alpha, gammaStarted), (beta, gammaStarted)] {
            _ = try await node.waitForLine(within: timeout, "gamma joining") { $0.type == "member-joined" && $0.id == other.id }
            say("  \(pad(node.label)) › member-joined: gamma (\(short(other.id))) at \(other.address ?? "?")")
        }
        say("  gamma ‹ members")
        try gamma.send("members")
        let list = try await gamma.waitForLine(within: timeout, "its member list") { $0.type == "members" }
        let names = (list.members ?? []).map(\.name).joined(separator: ", ")
        say("  gamma › members: \(names) (\(list.members?.count ?? 0) members)")
        guard list.members?.count == 3 else { throw DemoError("gamma sees \(list.members?.count ?? 0) members, not 3") }
        say("  gamma joined through alpha yet knows beta too: every member knows every other.")

        step(3, "a broadcast", """
            `emit NAME PAYLOAD` sends an event to every member, the sender included.
            Each member gets it exactly once, and the events of one sender arrive in
            the order they were sent.
            """)
        say("  alpha ‹ emit greeting hello from alpha")
        try alpha.send("emit greeting hello from alpha")
        for node in [alpha, beta, gamma] {
            let event = try await node.waitForLine(within: timeout, "the greeting") { $0.type == "event" && $0.name == "greeting" }
            say("  \(pad(node.label)) › event 'greeting' from alpha (\(short(event.origin))): \(event.payload ?? "")")
        }

        step(4, "a request and its reply", """
            `request ID NAME PAYLOAD` goes to one member only and waits for its answer
            (or a timeout). Every devts node answers requests named echo with the
            payload it got. (`send ID NAME PAYLOAD` is the same without an answer.)
            """)
        guard let betaID = betaStarted.id else { throw DemoError("beta's started line has no id") }
        say("  gamma ‹ request \(betaID) echo are you there, beta?")
        try gamma.send("request \(betaID) echo are you there, beta?")
        let reply = try await gamma.waitForLine(within: timeout, "the reply") { $0.type == "reply" }
        say("  gamma › reply from beta (\(short(reply.to))): \(reply.payload ?? "")")

        step(5, "a graceful leave", """
            `leave` (or Ctrl-C, or SIGTERM) tells the others before going, so they drop
            the node at once. A node that crashes is reported member-failed instead,
            after a few attempts to reconnect.
            """)
        say("  beta  ‹ leave")
        try beta.send("leave")
        guard let code = await beta.waitForExit(within: timeout) else { throw DemoError("beta did not exit after leave") }
        guard code == 0 else { throw DemoError("beta exited with code \(code) after leave") }
        say("  beta  exited with code 0")
        for node in [alpha, gamma] {
            _ = try await node.waitForLine(within: timeout, "beta leaving") { $0.type == "member-left" && $0.id == betaID }
            say("  \(pad(node.label)) › member-left: beta (\(short(betaID)))")
        }

        step(6, "the end", "alpha and gamma leave too; no process is left behind.")
        for node in [alpha, gamma] {
            say("  \(pad(node.label)) ‹ leave")
            try node.send("leave")
        }
        for node in [alpha, gamma] {
            guard let code = await node.waitForExit(within: timeout) else { throw DemoError("\(node.label) did not exit after leave") }
            guard code == 0 else { throw DemoError("\(node.label) exited with code \(code) after leave") }
        }
        say("  alpha and gamma exited with code 0")

        let elapsed = ContinuousClock.now - startedAt
        let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        let seconds = "\(milliseconds / 1000).\(milliseconds % 1000 / 100)"
        say()
        say("""
            Done in \(seconds) s. Try it by hand, in two terminals:
              devts node --listen 127.0.0.1:7946 --name first
              devts node --join 127.0.0.1:7946 --name second
            then type `members`, `emit hello world` or `request first echo hi` into
            either one, and from a third terminal: devts members --via 127.0.0.1:7946
            """)
    }
}

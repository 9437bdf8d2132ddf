import ArgumentParser
import Devts
import DevtsRuntime
import Foundation
import Logging

/// `devts node`: runs a node in the foreground, reading commands from stdin.
struct NodeCommand: AsyncParsableCommand {
    static let defaultListen = "127.0.0.1:0"

    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a node: join a cluster (or start one), print what happens, take commands on stdin.",
        discussion: """
            The node listens on its cluster port (--listen; the default \(defaultListen) means
            loopback only and a free port, printed in the started line and in the log).
            It joins through the first --join address that answers; when none does, it
            starts a new cluster, or with --require-join prints an error and exits with
            code 1.

            COMMANDS ON STDIN, one per line (PAYLOAD is the rest of the line after the
            space that follows NAME: it may contain spaces and may be empty):
              emit NAME PAYLOAD        broadcast to every member, this node included
              send ID NAME PAYLOAD     send an event to one member only
              request ID NAME PAYLOAD  send a request, print its reply; every devts
                                       node answers requests named echo with the
                                       payload it received
              members                  print the members this node sees (itself too)
              leave                    leave the cluster gracefully, exit with code 0
            ID: a member's id (32 hex digits), a unique prefix of one (such as the 8
            digits in the logs), or a unique member name.
            A malformed or failing command prints an error line; the node keeps running.
            The end of stdin does not stop the node (unless --leave-on-eof). SIGINT or
            SIGTERM makes it leave gracefully and exit with code 0; a second one makes
            it exit at once with code 1, and so does one that comes while it is still
            starting (before its started line).

            OUTPUT WITH --json: one JSON object per line on stdout, written at once.
            ID is 32 hex digits, ADDR is "HOST:PORT", TEXT is any string.
              {"type":"started","id":ID,"name":NAME,"address":ADDR,"bootstrapped":B}
                  the first line; B is true when this node started a new cluster
              {"type":"member-joined","id":ID,"name":NAME,"address":ADDR}
                  one per member already there at start, then one per member joining
              {"type":"member-left",...}, {"type":"member-failed",...}  (same fields)
                  a member left gracefully / was lost and could not be reconnected
              {"type":"event","name":NAME,"origin":ID,"kind":KIND,"payload":TEXT}
                  an event this node received. KIND: broadcast (its own emits too) or
                  direct (a send). Requests named other than echo are answered "no
                  handler" and not printed. "payload_base64" replaces "payload" when the
                  payload is not UTF-8.
              {"type":"reply","to":ID,"payload":TEXT}
                  the reply to a request command; "to" is the member that was asked
              {"type":"members","members":[MEMBER,...]}
                  the answer to members, sorted by name. MEMBER is
                  {"id":ID,"name":NAME,"address":ADDR,"status":S}, S is alive, or
                  unreachable while a lost connection is being re-established
              {"type":"error","message":TEXT}
                  a malformed or failed command, or a failure to start
            Without --json the same information is printed as readable lines.
            Logs go to stderr (see --log-level).

            EXAMPLES:
              devts node --listen 127.0.0.1:7946 --name first
              devts node --join 127.0.0.1:7946 --json
            """)

    @Option(
        help: ArgumentHelp(
            "The address to listen on: the node's cluster port. Port 0 picks a free port. (default: \(defaultListen))",
            valueName: "HOST:PORT"),
        transform: parseAddress)
    var listen: SocketAddress?

    @Option(
        help: ArgumentHelp(
            "The address other nodes should use to reach this one, when it differs from --listen (listening on 0.0.0.0, NAT).",
            valueName: "HOST:PORT"),
        transform: parseAddress)
    var advertise: SocketAddress?

    @Option(
        help: ArgumentHelp(
            "A member's cluster port to join through; repeat to give several, tried in order.", valueName: "HOST:PORT"),
        transform: parseAddress)
    var join: [SocketAddress] = []

    @Option(help: ArgumentHelp("This node's name, for people. (default: node- and the first 8 digits of its id)", valueName: "NAME"))
    var name: String?

    @OptionGroup var clusterOptions: ClusterOptions

    @Flag(help: "Fail (error line, exit code 1) instead of starting a new cluster when no --join address answers.")
    var requireJoin = false

    @Flag(help: "Print one JSON object per line on stdout (formats below).")
    var json = false

    @Flag(help: "Leave gracefully and exit when stdin ends (for supervisors and scripts that hold the node's stdin).")
    var leaveOnEof = false

    @OptionGroup var logOptions: LogOptions

    func validate() throws {
        if requireJoin && join.isEmpty {
            throw ValidationError("--require-join needs at least one --join HOST:PORT")
        }
        if let name, name.utf8.count > 255 {
            throw ValidationError("--name must be at most 255 bytes long")
        }
    }

    mutating func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let output = Output(json: json)
        let control = ControlChannel()  // before starting: a signal during the join ends the process
        let cluster = clusterOptions.cluster
        let logger = logOptions.makeLogger()
        let configuration = NodeConfiguration(
            listen: try listen ?? SocketAddress(parsing: Self.defaultListen), advertise: advertise, join: join,
            cluster: cluster, name: name, requireJoin: requireJoin, logger: logger)

        // Subscribed before the join, so that nothing arriving during it is missed; printed after the
        // started line.
        let subscriptions = Subscriptions()
        let node: Node
        do {
            node = try await Node.start(configuration) { node in
                await subscriptions.set(
                    events: node.events(named: nil), changes: node.membershipChanges())
                await node.respond(to: "echo") { $0.bytes }
            }
        } catch {
            let message = "could not start the node: \(error)"
            if json { output.error(message) }
            Output.printError("devts: \(message)")
            throw ExitCode.failure
        }

        control.started()
        let (events, changes) = subscriptions.get()
        output.started(await node.info, bootstrapped: await node.bootstrapped, cluster: cluster)

        let eventPrinter = Task {
            for await event in events { output.event(event) }
        }
        let memberPrinter = Task {
            // Members that arrived before the stream was subscribed come from the snapshot; the set
            // drops the ones reported by both.
            var known = Set<NodeID>()
            for member in await node.members where member.id != node.id {
                known.insert(member.id)
                output.membership(.joined, member)
            }
            for await change in changes {
                switch change.kind {
                case .joined:
                    if known.insert(change.member.id).inserted { output.membership(.joined, change.member) }
                case .left, .failed:
                    known.remove(change.member.id)
                    output.membership(change.kind, change.member)
                }
            }
        }

        control.startReadingStandardInput()
        let session = NodeSession(node: node, output: output)
        loop: for await item in control.stream {
            switch item {
            case .line(let line):
                if await session.handle(line) == .leave { break loop }
            case .endOfInput:
                if leaveOnEof {
                    output.note("stdin ended: leaving the cluster")
                    break loop
                }
                logger.notice("standard input ended; the node keeps running (SIGINT or SIGTERM stops it)")
            case .signal(let number):
                output.note("\(ControlChannel.name(number)): leaving the cluster")
                break loop
            }
        }

        var failed = false
        do {
            try await node.shutdown()
        } catch {
            Output.printError("devts: the node did not shut down cleanly: \(error)")
            failed = true
        }
        await eventPrinter.value
        await memberPrinter.value
        await session.finishRequests()
        output.note("left the cluster")
        if failed { throw ExitCode.failure }
    }
}

/// The node's streams, made in `Node.start`'s setup closure and handed back to `run`.
final class Subscriptions: @unchecked Sendable {
    private let lock = NSLock()
    private var events: EventStream<Event>?
    private var changes: AsyncStream<Cluster.MembershipChange>?

    func set(events: EventStream<Event>, changes: AsyncStream<Cluster.MembershipChange>) {
        lock.withLock {
            self.events = events
            self.changes = changes
        }
    }

    func get() -> (EventStream<Event>, AsyncStream<Cluster.MembershipChange>) {
        lock.withLock { (events!, changes!) }
    }
}

/// Carries out the stdin commands of one running node.
actor NodeSession {
    enum Outcome { case keepRunning, leave }

    let node: Node
    let output: Output
    private var requests: [UInt64: Task<Void, Never>] = [:]
    private var nextRequest: UInt64 = 0

    init(node: Node, output: Output) {
        self.node = node
        self.output = output
    }

    func handle(_ line: String) async -> Outcome {
        let command: StdinCommand?
        do {
            command = try StdinCommand(parsing: line)
        } catch {
            output.error("\(error)")
            return .keepRunning
        }
        guard let command else { return .keepRunning }
        do {
            switch command {
            case .emit(let name, let payload):
                try await node.broadcast(name, Array(payload.utf8))
            case .send(let target, let name, let payload):
                try await node.send(to: try await resolve(target), name, Array(payload.utf8))
            case .request(let target, let name, let payload):
                let id = try await resolve(target)
                let (node, output) = (node, output)
                nextRequest += 1
                let number = nextRequest
                // Requests run beside the loop, so a slow reply does not hold up the next commands.
                requests[number] = Task {
                    do {
                        output.reply(to: id, try await node.request(id, name, Array(payload.utf8)))
                    } catch {
                        output.error("request '\(name)' to \(id) failed: \(error)")
                    }
                    self.requestFinished(number)
                }
            case .members:
                output.members(await node.members)
            case .leave:
                output.note("leaving the cluster")
                return .leave
            }
        } catch {
            output.error("\(command.verb) failed: \(error)")
        }
        return .keepRunning
    }

    /// Waits for the requests still running (leaving fails them, so this is quick).
    func finishRequests() async {
        while let (_, request) = requests.first { await request.value }
    }

    private func requestFinished(_ number: UInt64) {
        requests.removeValue(forKey: number)
    }

    /// A member id from a full id, a unique id prefix, or a unique name.
    private func resolve(_ target: String) async throws -> NodeID {
        if let id = NodeID(target.lowercased()) { return id }
        let members = await node.members
        let lowered = target.lowercased()
        var matches = members.filter { $0.name == target }
        if matches.isEmpty, !lowered.isEmpty, lowered.allSatisfy(\.isHexDigit) {
            matches = members.filter { $0.id.description.hasPrefix(lowered) }
        }
        switch matches.count {
        case 1: return matches[0].id
        case 0: throw CommandError("no member has the id, id prefix or name '\(target)'")
        default: throw CommandError("'\(target)' matches \(matches.count) members: give more of the id")
        }
    }
}

/// A command read from stdin.
enum StdinCommand: Equatable {
    case emit(name: String, payload: String)
    case send(target: String, name: String, payload: String)
    case request(target: String, name: String, payload: String)
    case members
    case leave

    static let usage = "commands are: emit NAME PAYLOAD, send ID NAME PAYLOAD, request ID NAME PAYLOAD, members, leave"

    var verb: String {
        switch self {
        case .emit: "emit"
        case .send: "send"
        case .request: "request"
        case .members: "members"
        case .leave: "leave"
        }
    }

    /// Parses one line; nil for a blank line.
    ///
    /// Words are separated by spaces; PAYLOAD is everything after the single space that follows NAME,
    /// kept as it is (spaces included), and may be empty.
    init?(parsing line: String) throws {
        var rest = line[...].drop { $0 == " " || $0 == "\t" }
        func word() -> Substring {
            let word = rest.prefix { $0 != " " && $0 != "\t" }
            rest = rest[word.endIndex...]
            return word
        }
        func skipBlanks() { rest = rest.drop { $0 == " " || $0 == "\t" } }
        func payload() -> String {
            if let first = rest.first, first == " " || first == "\t" { rest = rest.dropFirst() }
            return String(rest)
        }
        func required(_ what: String, _ verb: String, _ form: String) throws -> String {
            skipBlanks()
            let value = word()
            guard !value.isEmpty else { throw CommandError("\(verb) needs \(what): \(form)") }
            return String(value)
        }
        let verb = String(word())
        switch verb {
        case "":
            return nil
        case "emit":
            let name = try required("a NAME", verb, "emit NAME PAYLOAD")
            self = .emit(name: name, payload: payload())
        case "send", "request":
            let form = "\(verb) ID NAME PAYLOAD"
            let target = try required("an ID", verb, form)
            let name = try required("a NAME", verb, form)
            let text = payload()
            self = verb == "send" ? .send(target: target, name: name, payload: text)
                : .request(target: target, name: name, payload: text)
        case "members", "leave":
            skipBlanks()
            guard rest.isEmpty else { throw CommandError("\(verb) takes no arguments, got '\(rest)'") }
            self = verb == "members" ? .members : .leave
        default:
            throw CommandError("unknown command '\(verb)': \(Self.usage)")
        }
    }
}

/// A command that could not be understood or carried out, with the reason.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

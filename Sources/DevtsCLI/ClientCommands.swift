import ArgumentParser
import Devts
import DevtsRuntime
import DevtsSpawn
import Foundation

/// `devts members`: asks one node for the members it sees, without joining.
struct MembersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "Print the members a node sees (itself included), without joining the cluster.",
        discussion: """
            Connects to the node at --via as a tool (not a member), asks, and
            disconnects. Prints a table (ID, NAME, ADDRESS, STATUS), or with --json
            one line (ID is 32 hex digits, ADDR is "HOST:PORT"):
              {"type":"members","members":[MEMBER,...]}
              MEMBER: {"id":ID,"name":NAME,"address":ADDR,"status":"alive"}
            When nothing answers at --via within --timeout (or it belongs to another
            --cluster), it prints the reason on stderr (with --json also
            {"type":"error","message":TEXT} on stdout) and exits with code 1.

            EXAMPLE:
              devts members --via 127.0.0.1:7946
            """)

    @Option(help: ArgumentHelp("The cluster port of any member.", valueName: "HOST:PORT"), transform: parseAddress)
    var via: SocketAddress

    @OptionGroup var clusterOptions: ClusterOptions

    @Option(help: ArgumentHelp("How long to wait for the answer, in seconds.", valueName: "SECONDS"))
    var timeout: Double = 5

    @Flag(help: "Print one JSON line instead of a table.")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be more than 0 and at most 3600 seconds") }
    }

    func run() async throws {
        let output = Output(json: json)
        do {
            let (via, cluster, timeout) = (via, clusterOptions.cluster, Duration.milliseconds(Int(timeout * 1000)))
            let members = try await withDeadline(timeout, "no answer from \(via) within \(timeout)") {
                try await DevtsClient.members(via: via, cluster: cluster, timeout: timeout)
            }
            output.members(members)
        } catch {
            throw failure(output, json: json, "could not get the members from \(via): \(error)")
        }
    }
}

/// `devts emit`: broadcasts one event through a node, without joining.
struct EmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit",
        abstract: "Broadcast an event to every member through one node, without joining the cluster.",
        discussion: """
            The node at --via broadcasts the event as if it had emitted it (its id is the event's origin), \
            then confirms; the command exits with code 0 once it has. PAYLOAD is sent as UTF-8 and may be \
            empty. When nothing answers at --via, or the node refuses the event, it prints the reason on \
            stderr (with --json also {"type":"error","message":TEXT} on stdout) and exits with code 1.

            EXAMPLE:
              devts emit --via 127.0.0.1:7946 greeting "hello, everyone"
            """)

    @Option(help: ArgumentHelp("The cluster port of any member.", valueName: "HOST:PORT"), transform: parseAddress)
    var via: SocketAddress

    @OptionGroup var clusterOptions: ClusterOptions

    @Option(help: ArgumentHelp("How long to wait for the confirmation, in seconds.", valueName: "SECONDS"))
    var timeout: Double = 5

    @Flag(help: "Print errors as JSON lines on stdout too.")
    var json = false

    @Argument(help: "The event's name.")
    var name: String

    @Argument(help: "The event's payload (UTF-8 text).")
    var payload: String = ""

    func validate() throws {
        guard !name.isEmpty else { throw ValidationError("the event NAME must not be empty") }
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be more than 0 and at most 3600 seconds") }
    }

    func run() async throws {
        let output = Output(json: json)
        do {
            let (via, cluster, timeout) = (via, clusterOptions.cluster, Duration.milliseconds(Int(timeout * 1000)))
            let (name, payload) = (name, Array(payload.utf8))
            try await withDeadline(timeout, "no answer from \(via) within \(timeout)") {
                try await DevtsClient.emit(via: via, name: name, payload: payload, cluster: cluster, timeout: timeout)
            }
        } catch {
            throw failure(output, json: json, "could not emit '\(name)' through \(via): \(error)")
        }
    }
}

/// Runs `body`, but gives up after `timeout` (plus a little, so that `body`'s own timeout error wins)
/// even when `body` cannot be cancelled: a last resort should the library's own connect and answer
/// timeouts not fire. The abandoned task ends with the process.
func withDeadline<T: Sendable>(
    _ timeout: Duration, _ message: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = Locked<CheckedContinuation<T, any Error>?>(nil)
    let resume = { @Sendable (result: Result<T, any Error>) in
        outcome.withLock { continuation in
            continuation?.resume(with: result)
            continuation = nil
        }
    }
    return try await withCheckedThrowingContinuation { continuation in
        outcome.withLock { $0 = continuation }
        Task {
            do { resume(.success(try await body())) } catch { resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: timeout + .milliseconds(500))
            resume(.failure(CommandError(message)))
        }
    }
}

/// Reports `message` (stderr, and an error line with --json); throw the result to exit with code 1.
func failure(_ output: Output, json: Bool, _ message: String) -> ExitCode {
    if json { output.error(message) }
    Output.printError("devts: \(message)")
    return .failure
}

import DevtsSpawn
import Foundation

/// One line a `devts node --json` prints (the fields of every type, all optional but `type`).
struct NodeLine: Decodable, Sendable {
    struct Member: Decodable, Sendable {
        let id: String
        let name: String
        let address: String
        let status: String
    }

    let type: String
    let id: String?
    let name: String?
    let address: String?
    let bootstrapped: Bool?
    let origin: String?
    let kind: String?
    let payload: String?
    let to: String?
    let message: String?
    let members: [Member]?
}

/// A `devts node --json` child process: its stdin to write commands to, and the lines it printed.
final class ChildNode: Sendable {
    let label: String
    private let process: ChildProcess
    private let output = Output()

    /// What the node printed, filled by the child's reader thread.
    private final class Output: Sendable {
        let state = Locked<(lines: [NodeLine], raw: [String], ended: Bool)>(([], [], false))
    }

    /// Starts `executable node --json arguments…` with stdin and stdout piped; stderr is inherited.
    init(label: String, executable: String, arguments: [String]) throws {
        self.label = label
        let output = self.output
        process = try ChildProcess(executable: executable, arguments: ["node", "--json"] + arguments) { text in
            guard let text else { return output.state.withLock { $0.ended = true } }
            let line = try? JSONDecoder().decode(NodeLine.self, from: Data(text.utf8))
            output.state.withLock { state in
                state.raw.append(text)
                if let line { state.lines.append(line) }
            }
        }
    }

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }

    /// Lines printed so far.
    var lines: [NodeLine] { output.state.withLock { $0.lines } }
    /// The raw text of the lines printed so far.
    var rawLines: [String] { output.state.withLock { $0.raw } }

    /// Writes one command line to the node's stdin.
    func send(_ command: String) throws {
        try process.write(command + "\n")
    }

    /// Waits until a printed line matches `predicate`, polling until `timeout` has passed.
    func waitForLine(
        within timeout: Duration, _ what: String, where predicate: (NodeLine) -> Bool
    ) async throws -> NodeLine {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (lines, ended) = output.state.withLock { ($0.lines, $0.ended) }
            if let line = lines.first(where: predicate) { return line }
            if let error = lines.first(where: { $0.type == "error" }) {
                throw DemoError("\(label) printed an error while waiting for \(what): \(error.message ?? "")")
            }
            guard ContinuousClock.now < deadline else {
                throw DemoError("\(label) did not print \(what) within \(timeout)")
            }
            guard !ended else {
                throw DemoError("\(label) closed its output (it exited) before printing \(what)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the process to exit; nil when it is still running after `timeout`.
    func waitForExit(within timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = process.exitStatus { return status }
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Kills the process (SIGKILL) if it still runs, and reaps it.
    func kill() {
        process.kill()
    }
}

/// A demo step that did not go as expected.
struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

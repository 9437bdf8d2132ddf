import Foundation
import Synchronization

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
    private let process: Process
    private let input: FileHandle
    private let collected = Mutex<(lines: [NodeLine], raw: [String], ended: Bool)>(([], [], false))

    /// Starts `executable node --json arguments…` with stdin and stdout piped; stderr is inherited.
    init(label: String, executable: String, arguments: [String]) throws {
        self.label = label
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["node", "--json"] + arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        self.process = process
        self.input = stdin.fileHandleForWriting
        let descriptor = stdout.fileHandleForReading.fileDescriptor
        let thread = Thread { [self] in
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                pending.append(contentsOf: buffer[..<count])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let bytes = Array(pending[..<newline])
                    pending.removeSubrange(...newline)
                    let line = try? JSONDecoder().decode(NodeLine.self, from: Data(bytes))
                    self.collected.withLock { state in
                        state.raw.append(String(decoding: bytes, as: UTF8.self))
                        if let line { state.lines.append(line) }
                    }
                }
            }
            self.collected.withLock { $0.ended = true }
            close(descriptor)
        }
        thread.name = "devts-demo-\(label)"
        thread.start()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Lines printed so far.
    var lines: [NodeLine] { collected.withLock { $0.lines } }
    /// The raw text of the lines printed so far.
    var rawLines: [String] { collected.withLock { $0.raw } }

    /// Writes one command line to the node's stdin.
    func send(_ command: String) throws {
        try input.write(contentsOf: Data((command + "\n").utf8))
    }

    /// Waits until a printed line matches `predicate`, polling until `timeout` has passed.
    func waitForLine(
        within timeout: Duration, _ what: String, where predicate: (NodeLine) -> Bool
    ) async throws -> NodeLine {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (lines, ended) = collected.withLock { ($0.lines, $0.ended) }
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
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Kills the process (SIGKILL) if it still runs, and reaps it.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A demo step that did not go as expected.
struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

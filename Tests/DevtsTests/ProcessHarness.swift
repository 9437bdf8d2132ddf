import DevtsSpawn
import Foundation

/// The `devts` executable that `swift test` built next to the test bundle.
func devtsExecutable() throws -> URL {
    let testBinary: URL
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        testBinary = URL(fileURLWithPath: path)
    } else {
        testBinary = Bundle.main.bundleURL.appendingPathComponent("x")
    }
    // Linux: .build/debug/DevtsPackageTests.xctest (a file); macOS: …/DevtsPackageTests.xctest/Contents/MacOS/….
    var directory = testBinary.deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("devts")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw HarnessError("no devts executable found near \(testBinary.path)")
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A JSON line a node printed.
typealias JSONLine = [String: Any]

/// A running `devts` process: stdin to write to, stdout and stderr collected as they come.
final class DevtsProcess: Sendable {
    let label: String
    private let process: ChildProcess
    private let output = Output()

    /// What the process printed, filled by its reader threads.
    private final class Output: Sendable {
        let state = Locked<(stdout: [String], stderr: String, stdoutEnded: Bool)>(([], "", false))
    }

    init(_ label: String, _ arguments: [String]) throws {
        self.label = label
        let output = self.output
        process = try ChildProcess(
            executable: try devtsExecutable().path, arguments: arguments,
            onStdout: { line in
                output.state.withLock { state in
                    if let line { state.stdout.append(line) } else { state.stdoutEnded = true }
                }
            },
            onStderr: { line in
                if let line { output.state.withLock { $0.stderr += line + "\n" } }
            })
    }

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }
    var stdoutLines: [String] { output.state.withLock { $0.stdout } }
    var stderrText: String { output.state.withLock { $0.stderr } }

    /// The stdout lines that are JSON objects.
    var jsonLines: [JSONLine] {
        stdoutLines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? JSONLine }
    }

    /// JSON lines of one type.
    func lines(_ type: String) -> [JSONLine] {
        jsonLines.filter { $0["type"] as? String == type }
    }

    func send(_ command: String) throws {
        try process.write(command + "\n")
    }

    func closeInput() throws {
        process.closeInput()
    }

    func signal(_ number: Int32) {
        process.signal(number)
    }

    /// Waits until `condition` holds for the JSON lines printed so far; throws after `timeout`.
    @discardableResult
    func waitFor(
        _ what: String, within timeout: Duration = .seconds(15), _ condition: ([JSONLine]) -> Bool
    ) async throws -> [JSONLine] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let lines = jsonLines
            if condition(lines) { return lines }
            guard ContinuousClock.now < deadline else {
                throw HarnessError("\(label) did not print \(what) within \(timeout).\nstdout:\n\(stdoutLines.joined(separator: "\n"))\nstderr:\n\(stderrText)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Waits until the process has written `text` to stderr; throws after `timeout`.
    func waitForStderr(_ text: String, within timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !stderrText.contains(text) {
            guard ContinuousClock.now < deadline else {
                throw HarnessError("\(label) did not write '\(text)' to stderr within \(timeout).\nstderr:\n\(stderrText)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the first line of `type` that satisfies `condition`.
    @discardableResult
    func waitForLine(
        _ type: String, within timeout: Duration = .seconds(15), where condition: @escaping (JSONLine) -> Bool = { _ in true }
    ) async throws -> JSONLine {
        let lines = try await waitFor("a \(type) line", within: timeout) { lines in
            lines.contains { $0["type"] as? String == type && condition($0) }
        }
        return lines.first { $0["type"] as? String == type && condition($0) }!
    }

    /// Waits for the process to exit and returns its exit code; throws after `timeout`.
    func waitForExit(within timeout: Duration = .seconds(15)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        var status = process.exitStatus
        while status == nil {
            guard ContinuousClock.now < deadline else { throw HarnessError("\(label) still runs after \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
            status = process.exitStatus
        }
        // Let the reader threads drain what the process wrote before it exited.
        while !output.state.withLock({ $0.stdoutEnded }) {
            guard ContinuousClock.now < deadline + .seconds(2) else { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        return status!
    }

    /// SIGKILLs the process if it still runs, and reaps it.
    func kill() {
        process.kill()
    }
}

/// Every process a test started, so that all are killed at its end whatever happened.
final class ProcessGroup: Sendable {
    private let processes = Locked<[DevtsProcess]>([])

    /// Starts `devts ARGUMENTS…`.
    func start(_ label: String, _ arguments: [String]) throws -> DevtsProcess {
        let process = try DevtsProcess(label, arguments)
        processes.withLock { $0.append(process) }
        return process
    }

    /// Starts `devts node --json --listen 127.0.0.1:0 --name LABEL ARGUMENTS…` and waits for its started line.
    func startNode(_ label: String, _ arguments: [String] = []) async throws -> (DevtsProcess, id: String, address: String) {
        let process = try start(label, ["node", "--json", "--listen", "127.0.0.1:0", "--name", label, "--log-level", "warning"] + arguments)
        let started = try await process.waitForLine("started")
        guard let id = started["id"] as? String, let address = started["address"] as? String else {
            throw HarnessError("\(label)'s started line lacks id or address: \(started)")
        }
        return (process, id, address)
    }

    /// Runs `devts ARGUMENTS…` to completion (killed after `timeout`): exit code, stdout, stderr.
    func run(_ arguments: [String], within timeout: Duration = .seconds(15)) async throws -> (code: Int32, stdout: [String], stderr: String) {
        let process = try start("devts \(arguments.first ?? "")", arguments)
        try process.closeInput()
        let code = try await process.waitForExit(within: timeout)
        return (code, process.stdoutLines, process.stderrText)
    }

    func killAll() {
        for process in processes.withLock({ $0 }) { process.kill() }
    }
}

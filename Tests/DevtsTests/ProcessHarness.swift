import Foundation
import Synchronization

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
    private let process: Process
    private let input: FileHandle
    private let output = Mutex<(stdout: [String], stderr: String, stdoutEnded: Bool)>(([], "", false))

    init(_ label: String, _ arguments: [String]) throws {
        self.label = label
        let process = Process()
        process.executableURL = try devtsExecutable()
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        self.process = process
        input = stdin.fileHandleForWriting
        Self.collect(stdout.fileHandleForReading.fileDescriptor, name: "\(label)-out") { [self] text, ended in
            self.output.withLock { state in
                if let text { state.stdout.append(text) }
                if ended { state.stdoutEnded = true }
            }
        }
        Self.collect(stderr.fileHandleForReading.fileDescriptor, name: "\(label)-err", lines: false) { [self] text, _ in
            if let text { self.output.withLock { $0.stderr += text } }
        }
    }

    /// Reads `descriptor` on a thread of its own until EOF, handing over whole lines (or raw chunks).
    private static func collect(
        _ descriptor: Int32, name: String, lines: Bool = true, _ deliver: @escaping @Sendable (String?, Bool) -> Void
    ) {
        let thread = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                if !lines {
                    deliver(String(decoding: buffer[..<count], as: UTF8.self), false)
                    continue
                }
                pending.append(contentsOf: buffer[..<count])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    deliver(String(decoding: pending[..<newline], as: UTF8.self), false)
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { deliver(String(decoding: pending, as: UTF8.self), false) }
            deliver(nil, true)
            close(descriptor)
        }
        thread.name = name
        thread.start()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdoutLines: [String] { output.withLock { $0.stdout } }
    var stderrText: String { output.withLock { $0.stderr } }

    /// The stdout lines that are JSON objects.
    var jsonLines: [JSONLine] {
        stdoutLines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? JSONLine }
    }

    /// JSON lines of one type.
    func lines(_ type: String) -> [JSONLine] {
        jsonLines.filter { $0["type"] as? String == type }
    }

    func send(_ command: String) throws {
        try input.write(contentsOf: Data((command + "\n").utf8))
    }

    func closeInput() throws {
        try input.close()
    }

    func signal(_ number: Int32) {
        if process.isRunning { Foundation.kill(process.processIdentifier, number) }
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
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw HarnessError("\(label) still runs after \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Let the reader threads drain what the process wrote before it exited.
        while !output.withLock({ $0.stdoutEnded }) {
            guard ContinuousClock.now < deadline + .seconds(2) else { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        return process.terminationStatus
    }

    /// SIGKILLs the process if it still runs, and reaps it.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// Every process a test started, so that all are killed at its end whatever happened.
final class ProcessGroup: Sendable {
    private let processes = Mutex<[DevtsProcess]>([])

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

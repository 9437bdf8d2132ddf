import Foundation
import Glibc

/// A child process started with `posix_spawn`, its stdin a pipe to write to, its stdout (and
/// optionally stderr) read line by line on threads of their own.
///
/// Foundation's `Process.run()` on Linux (Swift 6.3.1) intermittently crashes reading
/// `/proc/self/fd` (swift-corelibs-foundation #5472); `posix_spawn` with close-on-exec pipes needs
/// none of that. Used by `devts demo` and by the multi-process tests.
public final class ChildProcess: @unchecked Sendable {
    /// The child's process id.
    public let pid: pid_t
    private let stdinFD: Int32
    private let lock = NSLock()
    /// Guards the stdin descriptor (apart from `lock`, so that a blocked write cannot block `kill`).
    private let inputLock = NSLock()
    private var status: Int32?
    private var inputClosed = false

    /// Starts `executable` with `arguments`.
    ///
    /// - Parameters:
    ///   - onStdout: each line the child writes to stdout (without the newline), then nil at its end.
    ///   - onStderr: the same for stderr; nil leaves stderr to the parent's.
    /// - Throws: `SpawnError` when the pipes or the process cannot be made.
    public init(
        executable: String, arguments: [String],
        onStdout: @escaping @Sendable (String?) -> Void,
        onStderr: (@Sendable (String?) -> Void)? = nil
    ) throws {
        let stdinPipe = try Self.pipe()
        let stdoutPipe: (read: Int32, write: Int32)
        let stderrPipe: (read: Int32, write: Int32)?
        do {
            stdoutPipe = try Self.pipe()
            do {
                stderrPipe = onStderr == nil ? nil : try Self.pipe()
            } catch {
                close(stdoutPipe.read)
                close(stdoutPipe.write)
                throw error
            }
        } catch {
            close(stdinPipe.read)
            close(stdinPipe.write)
            throw error
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The pipes are close-on-exec; their duplicates on 0, 1, 2 are not.
        posix_spawn_file_actions_adddup2(&actions, stdinPipe.read, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1)
        if let stderrPipe { posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, 2) }

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child = pid_t()
        let rc = posix_spawn(&child, executable, &actions, nil, argv, environ)
        close(stdinPipe.read)
        close(stdoutPipe.write)
        if let stderrPipe { close(stderrPipe.write) }
        guard rc == 0 else {
            close(stdinPipe.write)
            close(stdoutPipe.read)
            if let stderrPipe { close(stderrPipe.read) }
            throw SpawnError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        stdinFD = stdinPipe.write
        Self.readLines(stdoutPipe.read, name: "child-\(child)-out", onStdout)
        if let stderrPipe, let onStderr { Self.readLines(stderrPipe.read, name: "child-\(child)-err", onStderr) }
    }

    deinit {
        closeInput()
        kill()  // never leave a child running, or a zombie, behind its owner
    }

    /// Writes `text` to the child's stdin.
    ///
    /// - Throws: `SpawnError` when the child no longer reads (its stdin closed).
    public func write(_ text: String) throws {
        // Under the lock, so that a concurrent `closeInput()` cannot hand the descriptor to another file.
        inputLock.lock()
        defer { inputLock.unlock() }
        guard !inputClosed else { throw SpawnError("the input of process \(pid) is closed") }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            // send with MSG_NOSIGNAL: a child that has gone is an error here, not a SIGPIPE.
            let written = bytes.withUnsafeBytes { send(stdinFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SpawnError("cannot write to process \(pid): \(String(cString: strerror(errno)))")
            }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Closes the child's stdin (it reads end of input). Closing twice is harmless.
    public func closeInput() {
        inputLock.withLock {
            if !inputClosed { Glibc.close(stdinFD) }
            inputClosed = true
        }
    }

    /// Whether the child still runs (reaps it when it has exited).
    public var isRunning: Bool { exitStatus == nil }

    /// The child's exit code once it has exited (128 + the signal's number when a signal ended it).
    public var exitStatus: Int32? {
        lock.withLock {
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { status = Self.decode(raw) }
            }
            return status
        }
    }

    /// Sends `signal` to the child if it still runs. (Under the lock: once reaped, its pid may
    /// belong to another process.)
    public func signal(_ signal: Int32) {
        lock.withLock {
            if status == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Kills the child (SIGKILL) if it still runs, and waits until it is gone.
    public func kill() {
        lock.withLock {
            guard status == nil else { return }
            Glibc.kill(pid, SIGKILL)
            var raw: Int32 = 0
            while status == nil {
                let rc = waitpid(pid, &raw, 0)
                if rc == pid { status = Self.decode(raw) } else if rc < 0 && errno != EINTR { status = -1 }
            }
        }
    }

    private static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7F
        return signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
    }

    /// A close-on-exec channel, made atomically so that no child spawned meanwhile by another thread
    /// inherits it (a socket pair: `pipe2` is not visible from Swift without _GNU_SOURCE).
    private static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw SpawnError("cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        return (fds[0], fds[1])
    }

    /// Reads `descriptor` on a thread of its own until its end, handing over whole lines.
    private static func readLines(_ descriptor: Int32, name: String, _ deliver: @escaping @Sendable (String?) -> Void) {
        let thread = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                pending.append(contentsOf: buffer[..<count])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    deliver(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { deliver(String(decoding: pending, as: UTF8.self)) }
            deliver(nil)
            close(descriptor)
        }
        thread.name = name
        thread.start()
    }
}

/// A child process that could not be started or written to.
public struct SpawnError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

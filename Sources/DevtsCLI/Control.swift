import DevtsSpawn
import Dispatch
import Foundation

/// What drives a running `devts node`: command lines from stdin, the end of stdin, and signals.
enum Control: Sendable {
    case line(String)
    case endOfInput
    case signal(Int32)
}

/// Merges stdin and SIGINT/SIGTERM into one `AsyncStream<Control>`.
///
/// Stdin is read by a dedicated `Thread` with blocking `readLine`, so the node's loop and the
/// cooperative thread pool never wait on it. Signals are caught with `DispatchSource`s (their default
/// action is turned off first); the first one is forwarded so the node can leave gracefully, and a
/// second one of the same kind ends the process at once (exit code 1) in case leaving hangs. A
/// signal that comes while the node is still starting (joining can wait on an unresponsive address)
/// ends the process at once too, with code 1: there is nothing to leave yet.
final class ControlChannel: Sendable {
    let stream: AsyncStream<Control>
    private let continuation: AsyncStream<Control>.Continuation
    private let received = Locked<Set<Int32>>([])
    private let starting = Locked(true)
    private nonisolated(unsafe) var sources: [any DispatchSourceSignal] = []

    init(signals: [Int32] = [SIGINT, SIGTERM]) {
        (stream, continuation) = AsyncStream.makeStream(of: Control.self)
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.caught(number) }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// The node is running: from now on a signal asks it to leave.
    func started() {
        starting.withLock { $0 = false }
    }

    private func caught(_ number: Int32) {
        if starting.withLock({ $0 }) {
            Output.printError("devts: \(Self.name(number)) while the node was starting, exiting")
            exit(1)
        }
        let again = received.withLock { !$0.insert(number).inserted }
        if again {
            Output.printError("devts: second \(Self.name(number)), exiting without leaving")
            exit(1)
        }
        continuation.yield(.signal(number))
    }

    static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(number)"
        }
    }

    /// Starts the thread that reads stdin line by line (a trailing CR is dropped).
    func startReadingStandardInput() {
        let continuation = self.continuation
        let thread = Thread {
            while let line = readLine(strippingNewline: true) {
                continuation.yield(.line(line.hasSuffix("\r") ? String(line.dropLast()) : line))
            }
            continuation.yield(.endOfInput)
        }
        thread.name = "devts-stdin"
        thread.start()
    }
}

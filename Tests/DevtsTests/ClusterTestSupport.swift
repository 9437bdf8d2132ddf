import Devts
import DevtsRuntime
import Foundation
import Logging
import Testing

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func waitUntil(
    timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// A logger that keeps quiet unless something is wrong.
func quietLogger() -> Logger {
    var logger = Logger(label: "devts-test")
    logger.logLevel = .error
    return logger
}

func config(join: [SocketAddress] = [], cluster: String = "test", name: String? = nil, requireJoin: Bool = false) -> NodeConfiguration {
    NodeConfiguration(
        join: join, cluster: cluster, name: name, requireJoin: requireJoin,
        joinTimeout: .seconds(2), requestTimeout: .seconds(5), logger: quietLogger())
}

/// Starts `count` nodes, each joining through the one before it.
func startCluster(_ count: Int, cluster: String = "test") async throws -> [Node] {
    var nodes: [Node] = []
    for index in 0..<count {
        var join: [SocketAddress] = []
        if let last = nodes.last { join = [await last.address] }
        nodes.append(try await Node.start(config(join: join, cluster: cluster, name: "n\(index)")))
    }
    return nodes
}

/// Shuts every node down and checks each loop closed cleanly.
func shutDownAll(_ nodes: [Node]) async throws {
    for node in nodes { try await node.shutdown() }
}

/// A thread-safe box for values collected in handlers (which run on the nodes' loop threads).
final class Collector<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Value] = []

    func append(_ value: Value) {
        lock.lock()
        values.append(value)
        lock.unlock()
    }

    var all: [Value] {
        lock.lock()
        defer { lock.unlock() }
        return values
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return values.count
    }
}

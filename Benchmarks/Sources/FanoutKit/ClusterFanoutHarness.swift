import Devts
import DevtsRuntime
import Logging
import Synchronization

/// The fan-out one layer up: five `Node`s in this process (each on a loop of its own), one of them
/// broadcasting named 64-byte events to the other four with `Node.broadcast(_:payloads:)`; each
/// receiver counts deliveries in an `on(_:_:)` handler. What a user of the cluster API gets.
public final class ClusterFanoutHarness: FanoutHarness {
    public let receivers: Int
    public let frameSize: Int
    private let origin: Node
    private let members: [Node]
    private let counters: [DeliveryCounter]
    private let finished: FinishLine
    /// The events sent per call into the origin node (one hop onto its loop per chunk).
    private let chunk = 4096

    private init(receivers: Int, frameSize: Int, origin: Node, members: [Node], counters: [DeliveryCounter], finished: FinishLine) {
        self.receivers = receivers
        self.frameSize = frameSize
        self.origin = origin
        self.members = members
        self.counters = counters
        self.finished = finished
    }

    /// Starts `receivers + 1` nodes on 127.0.0.1 that join each other, and waits until the origin
    /// sees them all.
    public static func start(receivers: Int, frameSize: Int) async throws -> ClusterFanoutHarness {
        var logger = Logger(label: "fanout")
        logger.logLevel = .error
        let configuration = NodeConfiguration(cluster: "fanout", logger: logger)
        let origin = try await Node.start(configuration)
        let finished = FinishLine()
        var members: [Node] = []
        var counters: [DeliveryCounter] = []
        for _ in 0..<receivers {
            var joining = configuration
            joining.join = [await origin.address]
            let counter = DeliveryCounter(finished: finished)
            let node = try await Node.start(joining) { node in
                await node.on("fanout") { counter.delivered($0) }
            }
            members.append(node)
            counters.append(counter)
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(10))
        while await origin.members.count < receivers + 1 {
            guard clock.now < deadline else { throw FanoutError("the cluster did not form within 10 s") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return ClusterFanoutHarness(
            receivers: receivers, frameSize: frameSize, origin: origin, members: members, counters: counters,
            finished: finished)
    }

    public func run(framesPerReceiver: Int) async throws -> Duration {
        for (counter, node) in zip(counters, members) {
            try await node.loop.submit { counter.arm(target: framesPerReceiver) }
        }
        // One payload array repeated: the copies share storage, so building a chunk allocates once.
        let payload = (0..<frameSize).map(payloadByte)
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.finished.wait(for: self.receivers) }
            var remaining = framesPerReceiver
            while remaining > 0 {
                let count = min(chunk, remaining)
                try await origin.broadcast("fanout", payloads: Array(repeating: payload, count: count), includeSelf: false)
                remaining -= count
            }
            try await group.waitForAll()
        }
        return clock.now - start
    }

    public func checksum() async throws -> UInt64 {
        var sum: UInt64 = 0
        for (counter, node) in zip(counters, members) {
            sum &+= try await node.loop.submit { counter.checksum }
        }
        return sum
    }

    public func shutdown() async throws {
        for node in members { try await node.shutdown() }
        try await origin.shutdown()
    }
}

/// Counts one receiver's deliveries. Touched only on its node's loop thread (the handler, and
/// `arm`/`checksum` through `loop.submit`).
final class DeliveryCounter: @unchecked Sendable {
    private let finished: FinishLine
    private var count = 0
    private var target = Int.max
    private(set) var checksum: UInt64 = 0

    init(finished: FinishLine) {
        self.finished = finished
    }

    func arm(target: Int) {
        count = 0
        self.target = target
    }

    func delivered(_ event: Event) {
        checksum &+= UInt64(event.payload.first ?? 0)
        count += 1
        if count == target { finished.cross() }
    }
}

/// Where receivers report that they are done; a run waits until all of them are.
final class FinishLine: Sendable {
    private struct State {
        var crossed = 0
        var waiter: (needed: Int, continuation: CheckedContinuation<Void, Never>)?
    }
    private let state = Mutex(State())

    func cross() {
        let resume = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.crossed += 1
            guard let waiter = state.waiter, state.crossed >= waiter.needed else { return nil }
            state.waiter = nil
            state.crossed = 0
            return waiter.continuation
        }
        resume?.resume()
    }

    func wait(for needed: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.crossed >= needed {
                    state.crossed = 0
                    return true
                }
                state.waiter = (needed, continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

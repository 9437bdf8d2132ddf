import DevtsRuntime

/// The fan-out through DevtsRuntime, in the same topology as the C reference: an `EventLoop` for
/// the sender (an actor pinned to it writes with `write(frame:)` and waits with
/// `waitUntilWritable()`), an `EventLoop` for the receivers (a listener and the accepted
/// connections, read with `startReading(onFrames:onClose:)`).
public final class SwiftFanoutHarness: FanoutHarness {
    public let receivers: Int
    public let frameSize: Int
    private let senderLoop: EventLoop
    private let receiverLoop: EventLoop
    private let sender: FanoutSender
    private let receiverSide: FanoutReceivers

    private init(
        receivers: Int, frameSize: Int, senderLoop: EventLoop, receiverLoop: EventLoop,
        sender: FanoutSender, receiverSide: FanoutReceivers
    ) {
        self.receivers = receivers
        self.frameSize = frameSize
        self.senderLoop = senderLoop
        self.receiverLoop = receiverLoop
        self.sender = sender
        self.receiverSide = receiverSide
    }

    /// Starts both loops, listens on 127.0.0.1:0 and connects one connection per receiver.
    ///
    /// - Throws: `UVError` or `FanoutError` when the set-up fails; the loops are shut down then.
    public static func start(receivers: Int, frameSize: Int) async throws -> SwiftFanoutHarness {
        precondition(receivers > 0 && frameSize >= 0)
        let senderLoop = try EventLoop(name: "fanout-send")
        let receiverLoop: EventLoop
        do {
            receiverLoop = try EventLoop(name: "fanout-recv")
        } catch {
            try? await senderLoop.shutdown()
            throw error
        }
        do {
            let receiverSide = FanoutReceivers(loop: receiverLoop, expected: receivers)
            let listener = try await TCPListener.listen(
                on: receiverLoop,
                address: try SocketAddress(host: "127.0.0.1", port: 0)
            ) { connection in
                receiverSide.accept(connection)
            }
            let sender = FanoutSender(loop: senderLoop, frameSize: frameSize)
            for _ in 0..<receivers {
                let connection = try await TCPConnection.connect(on: senderLoop, to: listener.address)
                await sender.add(connection)
            }
            try await receiverSide.waitForConnections()
            try await receiverLoop.submit { listener.close() }
            return SwiftFanoutHarness(
                receivers: receivers, frameSize: frameSize, senderLoop: senderLoop,
                receiverLoop: receiverLoop, sender: sender, receiverSide: receiverSide
            )
        } catch {
            try? await senderLoop.shutdown()
            try? await receiverLoop.shutdown()
            throw error
        }
    }

    public func run(framesPerReceiver: Int) async throws -> Duration {
        let receiverSide = self.receiverSide
        try await receiverLoop.submit { receiverSide.arm(framesPerReceiver: framesPerReceiver) }
        let clock = ContinuousClock()
        let start = clock.now
        async let sent: Void = sender.send(framesPerReceiver: framesPerReceiver)
        do {
            try await receiverSide.waitUntilDone()
        } catch {
            try? await sent
            throw error
        }
        let elapsed = clock.now - start
        try await sent
        return elapsed
    }

    public func checksum() async throws -> UInt64 {
        let receiverSide = self.receiverSide
        return try await receiverLoop.submit { receiverSide.checksum }
    }

    public func shutdown() async throws {
        await sender.closeAll()
        let receiverSide = self.receiverSide
        try await receiverLoop.submit { receiverSide.closeAll() }
        try await senderLoop.shutdown()
        try await receiverLoop.shutdown()
    }
}

/// Writes the frames: an actor on the sender loop, so it calls the connections directly.
actor FanoutSender {
    nonisolated let loop: EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    private var connections: [TCPConnection] = []
    /// The body of every frame (allocated once: the writes copy it into the outgoing batches).
    private nonisolated(unsafe) let payload: UnsafeMutableRawBufferPointer
    /// Frames written between two looks at the high-water mark: about one 64 KiB batch.
    private let chunk: Int

    init(loop: EventLoop, frameSize: Int) {
        self.loop = loop
        payload = .allocate(byteCount: frameSize, alignment: 16)
        for index in 0..<frameSize { payload[index] = payloadByte(index) }
        chunk = max(1, 64 * 1024 / (4 + frameSize))
    }

    deinit {
        payload.deallocate()
    }

    func add(_ connection: TCPConnection) {
        connections.append(connection)
    }

    /// Writes `framesPerReceiver` frames to every connection, a chunk at a time, and waits for a
    /// connection over its high-water mark to drain (to its low-water mark) before writing more.
    func send(framesPerReceiver: Int) async throws {
        let body = UnsafeRawBufferPointer(payload)
        var remaining = [Int](repeating: framesPerReceiver, count: connections.count)
        while true {
            var full: TCPConnection?
            for index in connections.indices where remaining[index] > 0 {
                let connection = connections[index]
                var left = remaining[index]
                while left > 0 && !connection.isOverHighWaterMark {
                    let count = min(left, chunk)
                    for _ in 0..<count { connection.write(frame: body) }
                    left -= count
                }
                remaining[index] = left
                if left > 0 && full == nil { full = connection }
            }
            guard let full else { return }
            try await full.waitUntilWritable()
        }
    }

    func closeAll() {
        for connection in connections { connection.close() }
        connections = []
    }
}

/// Counts what the receivers get; confined to the receiver loop (every method runs there).
final class FanoutReceivers: @unchecked Sendable {
    private let loop: EventLoop
    private let expected: Int
    private var connections: [TCPConnection] = []
    private var counts: [Int] = []
    private var target = 0
    private var done = 0
    private var failure: (any Error)?
    private var connectedWaiter: CheckedContinuation<Void, any Error>?
    private var doneWaiter: CheckedContinuation<Void, any Error>?
    /// The sum of the first body byte of every frame received.
    private(set) var checksum: UInt64 = 0

    init(loop: EventLoop, expected: Int) {
        self.loop = loop
        self.expected = expected
    }

    func accept(_ connection: TCPConnection) {
        guard connections.count < expected else {
            connection.close()
            fail(FanoutError("more connections than receivers"))
            return
        }
        let index = connections.count
        connections.append(connection)
        counts.append(0)
        connection.startReading(
            onFrames: { [unowned self] batch in self.received(batch, on: index) },
            onClose: { [unowned self] reason in
                if reason != .local { self.fail(reason) }
            }
        )
        if connections.count == expected, let waiter = connectedWaiter {
            connectedWaiter = nil
            waiter.resume()
        }
    }

    private func received(_ batch: FrameBatch, on index: Int) {
        var sum: UInt64 = 0
        batch.forEachFrame { frame in
            if !frame.isEmpty { sum &+= UInt64(frame[0]) }
        }
        checksum &+= sum
        let before = counts[index]
        counts[index] = before + batch.count
        if before < target && before + batch.count >= target {
            done += 1
            if done == expected, let waiter = doneWaiter {
                doneWaiter = nil
                waiter.resume()
            }
        }
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        if let waiter = connectedWaiter {
            connectedWaiter = nil
            waiter.resume(throwing: error)
        }
        if let waiter = doneWaiter {
            doneWaiter = nil
            waiter.resume(throwing: error)
        }
    }

    /// Resets the counts for a run of `framesPerReceiver` frames.
    func arm(framesPerReceiver: Int) {
        target = framesPerReceiver
        done = 0
        for index in counts.indices { counts[index] = 0 }
    }

    /// Returns once every receiver is connected.
    func waitForConnections() async throws {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            loop.execute {
                if let failure = self.failure {
                    waiter.resume(throwing: failure)
                } else if self.connections.count == self.expected {
                    waiter.resume()
                } else {
                    self.connectedWaiter = waiter
                }
            }
        }
    }

    /// Returns once every receiver has counted the frames of the armed run.
    func waitUntilDone() async throws {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            loop.execute {
                if let failure = self.failure {
                    waiter.resume(throwing: failure)
                } else if self.done == self.expected {
                    waiter.resume()
                } else {
                    self.doneWaiter = waiter
                }
            }
        }
    }

    func closeAll() {
        for connection in connections { connection.close() }
        connections = []
    }
}

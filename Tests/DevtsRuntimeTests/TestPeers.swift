import DevtsRuntime

/// One connection's reading side, as an actor pinned to the connection's loop: it records the
/// frames that arrive (and how they were batched) and how the connection closed, and may echo.
///
/// Its callbacks run on the loop thread and reach the actor with `assumeIsolated`, as the design
/// prescribes for libuv callbacks.
actor Peer {
    /// What the peer sends back for each batch it reads.
    enum Echo: Sendable {
        /// Nothing.
        case none
        /// Each frame, with `write(frame:)`.
        case frames
        /// The batch's bytes as they came, with `writeRaw`.
        case raw
    }

    let connection: TCPConnection
    /// The connection's loop, passed in rather than read from the connection, so that nothing
    /// written on the loop thread is read elsewhere.
    let loop: EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    private let echo: Echo
    private let keepFrames: Bool
    private let tally: LoopBound<Int>?
    /// The frames received, when kept.
    private(set) var frames: [[UInt8]] = []
    /// The number of frames received.
    private(set) var frameCount = 0
    /// The number of frames in each batch, in order.
    private(set) var batchSizes: [Int] = []
    /// Batches whose `count` did not match the frames their iterator or `forEachFrame` yielded.
    private(set) var inconsistentBatches = 0
    /// Why the connection closed; nil while open.
    private(set) var closeReason: TCPConnection.CloseReason?
    /// How many times `onClose` ran (it must run once).
    private(set) var closeCalls = 0

    /// - Parameter tally: incremented for every frame, to count frames over many peers in one place.
    init(_ connection: TCPConnection, on loop: EventLoop, echo: Echo = .none, keepFrames: Bool = true,
         tally: LoopBound<Int>? = nil) {
        self.connection = connection
        self.loop = loop
        self.echo = echo
        self.keepFrames = keepFrames
        self.tally = tally
    }

    func startReading() {
        connection.startReading(
            onFrames: { batch in self.assumeIsolated { $0.receive(batch) } },
            onClose: { reason in self.assumeIsolated { $0.closed(reason) } }
        )
    }

    private func receive(_ batch: FrameBatch) {
        batchSizes.append(batch.count)
        var iterated = 0
        for frame in batch {
            iterated += 1
            if keepFrames { frames.append(Array(frame)) }
            if echo == .frames { connection.write(frame: frame) }
        }
        var visited = 0
        batch.forEachFrame { _ in visited += 1 }
        if iterated != batch.count || visited != batch.count { inconsistentBatches += 1 }
        frameCount += iterated
        tally?.value += iterated
        if echo == .raw { batch.storage.withUnsafeBytes { connection.writeRaw($0) } }
    }

    private func closed(_ reason: TCPConnection.CloseReason) {
        closeCalls += 1
        closeReason = reason
    }

    func write(_ frame: [UInt8]) {
        connection.write(frame: frame)
    }

    /// Queues `bytes` unframed and flushes them at once, so each call leaves in its own `uv_write`.
    func writeRaw(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { connection.writeRaw($0) }
        connection.flush()
    }

    func close() {
        connection.close()
    }

    var queuedBytes: Int { connection.queuedBytes }
    var connectionID: UInt64 { connection.id }
    var isOpen: Bool { connection.isOpen }
    var localAddress: SocketAddress? { connection.localAddress }
    var remoteAddress: SocketAddress? { connection.remoteAddress }
}

/// A listener as an actor pinned to its loop; each accepted connection becomes a `Peer`.
actor TestServer {
    let loop: EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    private let echo: Peer.Echo
    private let read: Bool
    private let keepFrames: Bool
    private let tally: LoopBound<Int>?
    private(set) var listener: TCPListener?
    /// A peer per accepted connection, in order of acceptance.
    private(set) var peers: [Peer] = []

    /// - Parameter read: whether accepted connections start reading at once.
    init(on loop: EventLoop, echo: Peer.Echo = .frames, read: Bool = true, keepFrames: Bool = true,
         tally: LoopBound<Int>? = nil) {
        self.loop = loop
        self.echo = echo
        self.read = read
        self.keepFrames = keepFrames
        self.tally = tally
    }

    /// Listens on 127.0.0.1 and a port the OS picks; returns the address with that port.
    func listen(maxFrameSize: Int = 16 * 1024 * 1024, backlog: Int32 = 1024) throws -> SocketAddress {
        let listener = try TCPListener(
            on: loop, address: .loopbackAnyPort, backlog: backlog, maxFrameSize: maxFrameSize
        ) { connection in
            self.assumeIsolated { $0.accept(connection) }
        }
        self.listener = listener
        return listener.address
    }

    private func accept(_ connection: TCPConnection) {
        let peer = Peer(connection, on: loop, echo: echo, keepFrames: keepFrames, tally: tally)
        peers.append(peer)
        if read { peer.assumeIsolated { $0.startReading() } }
    }

    /// The peer whose remote address is `address` (a client's local address).
    func peer(from address: SocketAddress?) -> Peer? {
        peers.first { peer in peer.assumeIsolated { $0.remoteAddress } == address }
    }

    /// How many accepted connections have closed, by reason.
    func closeReasons() -> [TCPConnection.CloseReason?] {
        peers.map { peer in peer.assumeIsolated { $0.closeReason } }
    }

    func closeListener() {
        listener?.close()
    }

    /// Closes the listener and every accepted connection.
    func closeAll() {
        listener?.close()
        for peer in peers { peer.connection.close() }
    }
}

/// Connects to `address` on `loop` and wraps the connection in a `Peer` that reads.
func connectPeer(on loop: EventLoop, to address: SocketAddress, echo: Peer.Echo = .none,
                 tally: LoopBound<Int>? = nil) async throws -> Peer {
    let peer = Peer(try await TCPConnection.connect(on: loop, to: address), on: loop, echo: echo, tally: tally)
    await peer.startReading()
    return peer
}

/// Queues 1 MiB frames on `connection`, whose peer does not read, until more than `bytes` stay
/// queued after libuv has written what the kernel takes: the kernel's buffers are then full, and
/// the queue can drain only when the peer reads.
func fillUntilBlocked(_ connection: TCPConnection, on loop: EventLoop, beyond bytes: Int) async throws {
    for _ in 0..<512 {
        try await loop.perform {
            connection.writeFrame(length: 1 << 20) { $0.initializeMemory(as: UInt8.self, repeating: 0xA5) }
        }
        // A later job: libuv's write callbacks for what the kernel took have run by now.
        if try await loop.perform({ connection.queuedBytes }) > bytes { return }
    }
    throw Timeout(description: "the kernel took 512 MiB without the peer reading")
}

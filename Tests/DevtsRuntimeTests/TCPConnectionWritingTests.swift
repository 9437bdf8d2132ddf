import DevtsRuntime
import Testing

/// A writer on an actor pinned to the connection's loop, as `waitUntilWritable()` requires.
actor Writer {
    let connection: TCPConnection
    let loop: EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    /// Set just before the writer waits; the wait has begun once a later job sees it.
    private(set) var waiting = false
    /// `queuedBytes` when the wait ended.
    private(set) var queuedAtResume: Int?

    init(_ connection: TCPConnection, on loop: EventLoop) {
        self.connection = connection
        self.loop = loop
    }

    func waitForRoom() async throws {
        queuedAtResume = nil
        waiting = true
        defer { waiting = false }
        try await connection.waitUntilWritable()
        queuedAtResume = connection.queuedBytes
    }

    /// One consistent look at the connection from the loop thread.
    func state() -> (queued: Int, waiting: Bool, resumed: Bool) {
        (connection.queuedBytes, waiting, queuedAtResume != nil)
    }
}

@Suite struct TCPConnectionWritingTests {
    @Test func framesQueuedInOnePassLeaveTogether() async throws {
        try await withLoop("batching") { loop in
            let server = TestServer(on: loop, echo: .none)
            let address = try await server.listen()
            let connection = try await TCPConnection.connect(on: loop, to: address)
            let frames = (0..<1_000).map { [UInt8](repeating: UInt8($0 % 256), count: $0 % 20) }
            let (written, queued) = try await loop.perform {
                for frame in frames { connection.write(frame: frame) }
                return (connection.framesWritten, connection.queuedBytes)
            }
            #expect(written == 1_000)
            #expect(queued == frames.reduce(0) { $0 + 4 + $1.count })
            try await waitUntil("all frames arrived") { await server.peers.first?.frameCount == 1_000 }
            let serverSide = try #require(await server.peers.first)
            #expect(await serverSide.frames == frames)
            // Batched into one write (of ~13 KiB), so the reader got them in very few reads.
            let batches = await serverSide.batchSizes
            #expect(batches.count <= 10, "batches: \(batches)")
            try await waitUntil("the writes completed") { try await loop.perform { connection.queuedBytes } == 0 }

            try await loop.perform { connection.close() }
            try await waitUntil("the server side closed") { await serverSide.closeReason == .peerClosed }
            await server.closeListener()
        }
    }

    @Test func waitUntilWritableWaitsAboveTheHighWaterMarkUntilDrained() async throws {
        try await withLoop("backpressure") { loop in
            // The server side does not read until told to.
            let server = TestServer(on: loop, echo: .none, read: false, keepFrames: false)
            let address = try await server.listen()
            let connection = try await TCPConnection.connect(on: loop, to: address)
            let (high, low) = (256 * 1024, 64 * 1024)
            try await loop.perform {
                connection.highWaterMark = high
                connection.lowWaterMark = low
            }
            let writer = Writer(connection, on: loop)

            // Below the mark: returns at once.
            try await writer.waitForRoom()
            #expect(await writer.queuedAtResume == 0)

            // Fill far past the mark: the peer reads nothing, so the queue cannot drain.
            try await fillUntilBlocked(connection, on: loop, beyond: high + 4 * 1024 * 1024)
            let waiter = Task { try await writer.waitForRoom() }
            try await waitUntil("the writer is waiting") { await writer.state().waiting }
            for _ in 0..<5 {
                try await loop.perform {}  // more loop passes, the queue still full
                let state = await writer.state()
                #expect(state.queued > low)
                #expect(!state.resumed, "resumed with \(state.queued) bytes queued")
            }

            // The peer reads: the queue drains and the writer resumes, at or below the low mark.
            let serverSide = try #require(await server.peers.first)
            await serverSide.startReading()
            try await waiter.value("the writer resumed")
            let resumedAt = try #require(await writer.queuedAtResume)
            #expect(resumedAt <= low)

            try await loop.perform { connection.close() }
            try await waitUntil("the server side closed") { await serverSide.closeReason == .peerClosed }
            await server.closeListener()
        }
    }

    @Test func waitUntilWritableThrowsWhenTheConnectionCloses() async throws {
        try await withLoop("backpressure-close") { loop in
            let server = TestServer(on: loop, echo: .none, read: false)
            let address = try await server.listen()
            let connection = try await TCPConnection.connect(on: loop, to: address)
            try await loop.perform {
                connection.highWaterMark = 64 * 1024
                connection.lowWaterMark = 16 * 1024
            }
            let writer = Writer(connection, on: loop)
            try await fillUntilBlocked(connection, on: loop, beyond: 1024 * 1024)
            let waiter = Task { try await writer.waitForRoom() }
            try await waitUntil("the writer is waiting") { await writer.state().waiting }

            try await loop.perform { connection.close() }
            await #expect(throws: TCPConnection.CloseReason.local) { try await waiter.value("the writer was told") }
            // Once closed, it throws at once.
            await #expect(throws: TCPConnection.CloseReason.local) { try await writer.waitForRoom() }
            // What was queued or in flight was released.
            try await waitUntil("the queue is empty") { try await loop.perform { connection.queuedBytes } == 0 }

            await server.closeAll()
        }
    }

    @Test func closeWhenFlushedDeliversEverythingQueuedThenCloses() async throws {
        try await withLoop("close-flushed") { loop in
            let server = TestServer(on: loop, echo: .none)
            let address = try await server.listen()
            let client = try await connectPeer(on: loop, to: address)
            // 4 MiB queued in one pass, more than the kernel takes at once, then the graceful close.
            let frames = (0..<64).map { [UInt8](repeating: UInt8($0), count: 64 * 1024 - 4) }
            let (queued, open) = try await loop.perform { () -> (Int, Bool) in
                for frame in frames { client.connection.write(frame: frame) }
                client.connection.closeWhenFlushed()
                client.connection.write(frame: [1])  // after closeWhenFlushed: dropped
                return (client.connection.queuedBytes, client.connection.isOpen)
            }
            #expect(queued == 64 * 64 * 1024)
            #expect(open)  // still open until the queue drains
            try await waitUntil("the client closed") { await client.closeReason != nil }
            #expect(await client.closeReason == .local)
            let serverSide = try #require(await server.peers.first)
            try await waitUntil("the server side saw the close") { await serverSide.closeReason != nil }
            #expect(await serverSide.closeReason == .peerClosed)
            #expect(await serverSide.frames == frames)
            await server.closeListener()
        }
    }

    @Test func writesAfterCloseAreDropped() async throws {
        try await withLoop("write-after-close") { loop in
            let server = TestServer(on: loop, echo: .none)
            let address = try await server.listen()
            let client = try await connectPeer(on: loop, to: address)
            await client.write([1, 2, 3])
            try await waitUntil("the first frame arrived") { await server.peers.first?.frameCount == 1 }

            let after = try await loop.perform { () -> (written: Int, queued: Int, open: Bool) in
                let connection = client.connection
                connection.close()
                connection.write(frame: [4, 5, 6])
                connection.writeFrame(length: 3) { $0.initializeMemory(as: UInt8.self, repeating: 7) }
                [UInt8](repeating: 8, count: 100_000).withUnsafeBytes { connection.writeRaw($0) }
                connection.flush()
                connection.close()
                return (connection.framesWritten, connection.queuedBytes, connection.isOpen)
            }
            #expect(after.written == 1)
            #expect(after.queued == 0)
            #expect(!after.open)
            #expect(await client.closeReason == .local)
            #expect(await client.closeCalls == 1)

            let serverSide = try #require(await server.peers.first)
            try await waitUntil("the server side closed") { await serverSide.closeReason != nil }
            #expect(await serverSide.closeReason == .peerClosed)
            #expect(await serverSide.frames == [[1, 2, 3]])
            await server.closeListener()
        }
    }
}

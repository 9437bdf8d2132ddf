import DevtsRuntime
import Testing

/// Shutdown of a busy loop: open connections with writes in flight and unflushed, timers, a writer
/// waiting for room, a connection being made. Everything closes and everything is freed.
@Suite struct ShutdownTests {
    /// What the test keeps weakly, to see that shutdown frees it.
    private final class Freed: Sendable {
        private let objects = Locked([(String, WeakRef<AnyObject>)]())
        func watch(_ name: String, _ object: AnyObject) { objects.withLock { $0.append((name, WeakRef(object))) } }
        var alive: [String] { objects.withLock { $0.filter { $0.1.value != nil }.map(\.0) } }
    }

    @Test func shutdownWithOpenConnectionsAndPendingWritesClosesAndFreesEverything() async throws {
        let freed = Freed()
        let closes = Locked([String: TCPConnection.CloseReason]())
        let connectOutcome = Locked<[String]>([])
        var waiter: Task<Void, any Error>?

        do {
            let loop = try EventLoop(name: "shutdown")
            freed.watch("loop", loop)
            let accepted = LoopBound([TCPConnection](), on: loop)
            let listener = try await TCPListener.listen(on: loop, address: .loopbackAnyPort) { connection in
                accepted.value.append(connection)
            }
            freed.watch("listener", listener)
            let address = try await loop.perform { listener.address }

            // Pair 1: the client reads and writes; its server side never reads.
            let client1 = try await TCPConnection.connect(on: loop, to: address)
            try await waitUntil("the first connection was accepted") { try await accepted.read().count == 1 }
            // Pair 2: the server side reads and writes; its client never reads.
            let client2 = try await TCPConnection.connect(on: loop, to: address)
            try await waitUntil("the second connection was accepted") { try await accepted.read().count == 2 }
            let server1 = try await accepted.read()[0]
            let server2 = try await accepted.read()[1]
            let all = [("client1", client1), ("client2", client2), ("server1", server1), ("server2", server2)]
            for (name, connection) in all {
                freed.watch(name, connection)
            }
            try await loop.perform {
                for (name, connection) in [("client1", client1), ("server2", server2)] {
                    connection.startReading(onFrames: { _ in }, onClose: { reason in
                        closes.withLock { $0[name] = reason }
                    })
                }
            }

            // Writes in flight: more than the kernel takes, toward peers that do not read.
            try await fillUntilBlocked(client1, on: loop, beyond: 2 << 20)
            try await fillUntilBlocked(server2, on: loop, beyond: 2 << 20)

            // A writer waiting for room on client1.
            let writer = Writer(client1, on: loop)
            try await loop.perform {
                client1.highWaterMark = 1 << 20
                client1.lowWaterMark = 1 << 19
            }
            waiter = Task { try await writer.waitForRoom() }
            try await waitUntil("the writer is waiting") { await writer.state().waiting }

            // Timers: one repeating (far apart), one not yet due.
            let timers = try await loop.perform { () -> [LoopTimer] in
                let repeating = LoopTimer(on: loop)
                repeating.start(after: .seconds(3600), repeating: .seconds(3600)) {}
                return [repeating, loop.schedule(after: .seconds(3600)) {}]
            }
            freed.watch("repeating timer", timers[0])
            freed.watch("scheduled timer", timers[1])
            #expect(try await openResources(loop) == 7)

            // Queued just before shutdown, so they run in the same pass as it: frames not yet
            // flushed, a large frame behind the blocked writes, and a connection being made.
            loop.execute {
                for index in 0..<100 { client1.write(frame: [UInt8](repeating: UInt8(index), count: 100)) }
                server2.writeFrame(length: 3 << 20) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
                TCPConnection.connect(on: loop, to: address) { result in
                    switch result {
                    case .success(let connection):
                        freed.watch("late connection", connection)
                        connectOutcome.withLock { $0.append("connected") }
                    case .failure(let error):
                        connectOutcome.withLock { $0.append("failed: \(error.name)") }
                    }
                }
            }
            try await shutDown(loop)
        }

        // The waiting writer was told why.
        let waiting = try #require(waiter)
        await #expect(throws: TCPConnection.CloseReason.local) { try await waiting.value("the writer was told") }
        // Every reading connection saw a local close, once.
        #expect(closes.value == ["client1": .local, "server2": .local])
        // The connection being made completed exactly once: cancelled, or connected and then closed.
        let outcome = connectOutcome.value
        #expect(outcome == ["failed: ECANCELED"] || outcome == ["connected"], "\(outcome)")
        // Nothing is left: the loop and every handle on it are freed once the loop thread lets go.
        try await waitUntil("everything is freed; still alive: \(freed.alive)") { freed.alive.isEmpty }
    }
}

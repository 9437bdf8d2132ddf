import DevtsRuntime
import Testing

@Suite("Pausing reads")
struct TCPConnectionPauseTests {
    @Test("a paused reader makes the writer's queue fill up; resuming delivers every frame")
    func pauseAppliesBackpressureAndLosesNothing() async throws {
        try await withLoop { loop in
            let server = TestServer(on: loop, echo: .none, keepFrames: false)
            let address = try await server.listen()
            let client = try await TCPConnection.connect(on: loop, to: address)
            try await waitUntil("the server accepted the connection") { await server.peers.count == 1 }
            let reader = await server.peers[0]
            try await loop.perform { reader.connection.pauseReading() }
            #expect(try await loop.perform { reader.connection.isReadingPaused })

            // With the reader paused, the kernel's buffers fill and the writer's queue stays full.
            try await fillUntilBlocked(client, on: loop, beyond: 4 << 20)
            let written = try await loop.perform { client.framesWritten }
            let readWhilePaused = await reader.frameCount
            #expect(readWhilePaused < written)

            try await loop.perform { reader.connection.resumeReading() }
            #expect(try await loop.perform { !reader.connection.isReadingPaused })
            try await waitUntil("every frame arrived after resuming") { await reader.frameCount == written }
            try await waitUntil("the writer's queue drained") { try await loop.perform { client.queuedBytes } == 0 }

            // Pausing twice, or a closed connection, is harmless.
            let pausedWithoutReading = try await loop.perform {
                client.pauseReading()  // not reading: nothing to pause
                let paused = client.isReadingPaused
                client.close()
                client.resumeReading()
                reader.connection.close()
                return paused
            }
            #expect(!pausedWithoutReading)
            await server.closeListener()
        }
    }
}

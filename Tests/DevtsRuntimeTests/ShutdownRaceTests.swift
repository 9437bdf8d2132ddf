import DevtsRuntime
import Testing

@Suite("Shutdown races")
struct ShutdownRaceTests {
    @Test("a connect that reaches the loop while it shuts down is closed too: uv_loop_close returns 0")
    func connectRacingShutdown() async throws {
        let server = try EventLoop(name: "race-server")
        let listener = try await TCPListener.listen(on: server, address: .loopbackAnyPort) { connection in
            connection.startReading(onFrames: { _ in }, onClose: { _ in })
        }
        let address = listener.address
        for round in 0..<200 {
            let loop = try EventLoop(name: "race")
            let connecting = Task { () async throws in
                _ = try? await TCPConnection.connect(on: loop, to: address, timeout: .seconds(5))
            }
            await Task.yield()
            await #expect(throws: Never.self, "round \(round)") { try await loop.shutdown() }
            _ = try await connecting.value("the connect of round \(round) completes", timeout: .seconds(10))
        }
        try await server.submit { listener.close() }
        try await shutDown(server)
    }
}

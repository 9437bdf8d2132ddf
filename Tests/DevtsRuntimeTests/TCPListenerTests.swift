import DevtsRuntime
import Testing

@Suite struct TCPListenerTests {
    @Test func aThousandConcurrentConnectionsEchoAndCloseCleanly() async throws {
        let wanted = 1_000
        // Both ends live in this process: 2 descriptors per connection, plus a margin for what the
        // rest of the suite, running in parallel, holds.
        let margin = 512
        let limit = raiseOpenFileLimit(to: 2 * wanted + margin)
        let connections = min(wanted, (limit - margin) / 2)
        if connections < wanted {
            Issue.record(
                "RLIMIT_NOFILE is \(limit) and cannot be raised: \(connections) connections instead of \(wanted)",
                severity: .warning)
        }
        try #require(connections >= 100, "RLIMIT_NOFILE is only \(limit)")

        try await withLoop("k-server") { serverLoop in
            try await withLoop("k-clients") { clientLoop in
                let serverFrames = LoopBound(0, on: serverLoop)
                let clientFrames = LoopBound(0, on: clientLoop)
                let server = TestServer(on: serverLoop, echo: .frames, keepFrames: false, tally: serverFrames)
                let address = try await server.listen()

                // 1. All connect, concurrently.
                let clients = try await withThrowingTaskGroup(of: Peer.self) { group in
                    for _ in 0..<connections {
                        group.addTask { try await connectPeer(on: clientLoop, to: address, tally: clientFrames) }
                    }
                    return try await group.reduce(into: [Peer]()) { $0.append($1) }
                }
                try await waitUntil("the server accepted every connection") {
                    await server.peers.count == connections
                }
                #expect(try await openResources(serverLoop) == connections + 1)
                #expect(try await openResources(clientLoop) == connections)

                // 2. Each sends a frame naming itself, and gets it back.
                let payloads = clients.indices.map { index in
                    (0..<32).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
                        + [UInt8(index >> 8), UInt8(index & 0xFF)]
                }
                await withTaskGroup(of: Void.self) { group in
                    for (client, payload) in zip(clients, payloads) { group.addTask { await client.write(payload) } }
                }
                try await waitUntil("every frame is echoed") { try await clientFrames.read() == connections }
                #expect(try await serverFrames.read() == connections)
                for (index, client) in clients.enumerated() {
                    let frames = await client.frames
                    #expect(frames == [payloads[index]], "client \(index)")
                }

                // 3. All close.
                try await clientLoop.perform { for client in clients { client.connection.close() } }
                try await waitUntil("every server side saw its client close") {
                    await server.closeReasons().allSatisfy { $0 != nil }
                }
                let reasons = await server.closeReasons()
                #expect(reasons.allSatisfy { $0 == .peerClosed })
                try await waitUntil("only the listener is left") { try await openResources(serverLoop) == 1 }
                #expect(try await openResources(clientLoop) == 0)
                await server.closeListener()
            }
        }
    }

    @Test func listeningOnAnAddressInUseFailsClearly() async throws {
        try await withLoop("in-use") { loop in
            let first = try await TCPListener.listen(on: loop, address: .loopbackAnyPort) { $0.close() }
            let address = try await loop.perform { first.address }
            #expect(address.host == "127.0.0.1")
            #expect(address.port != 0)
            let error = await #expect(throws: UVError.self) {
                try await TCPListener.listen(on: loop, address: address) { $0.close() }
            }
            #expect(error == .addressInUse)
            #expect(error?.description.contains(address.description) == true, "\(String(describing: error))")
            // The failed listener closed its handle: only the first is left.
            try await waitUntil("the failed listener closed") { try await openResources(loop) == 1 }
            let (openBefore, openAfter) = try await loop.perform { () -> (Bool, Bool) in
                let before = first.isOpen
                first.close()
                first.close()  // closing twice is harmless
                return (before, first.isOpen)
            }
            #expect(openBefore)
            #expect(!openAfter)
        }
    }

    @Test func closingTheListenerLeavesAcceptedConnectionsOpen() async throws {
        try await withLoop("listener-close") { loop in
            let server = TestServer(on: loop, echo: .frames)
            let address = try await server.listen()
            let client = try await connectPeer(on: loop, to: address)
            try await waitUntil("the server accepted") { await server.peers.count == 1 }
            await server.closeListener()
            try await waitUntil("the listener closed") { try await openResources(loop) == 2 }

            await client.write([42])
            try await waitUntil("the frame is echoed") { await client.frameCount == 1 }
            #expect(await client.frames == [[42]])
            // Nobody listens any more.
            await #expect(throws: UVError.connectionRefused) {
                try await TCPConnection.connect(on: loop, to: address)
            }
            await client.close()
            await server.closeAll()
        }
    }
}

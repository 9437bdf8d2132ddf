import DevtsRuntime
import Glibc
import Testing

@Suite struct TCPConnectionConnectTests {
    @Test func connectingToAClosedPortIsRefusedClearly() async throws {
        try await withLoop("refused") { loop in
            // A port that was just free: bind it, read it, close it.
            let listener = try await TCPListener.listen(on: loop, address: .loopbackAnyPort) { $0.close() }
            let address = try await loop.perform { listener.address }
            #expect(address.port != 0)
            try await loop.perform { listener.close() }
            try await waitUntil("the listener closed") { try await openResources(loop) == 0 }

            let error = await #expect(throws: UVError.self) {
                try await TCPConnection.connect(on: loop, to: address)
            }
            #expect(error == .connectionRefused)
            #expect(error?.name == "ECONNREFUSED")
            #expect(error?.description
                == "connect to 127.0.0.1:\(address.port) failed: ECONNREFUSED: connection refused")

            // The same error matches in a catch clause.
            var matched = false
            do {
                _ = try await TCPConnection.connect(on: loop, to: address)
            } catch UVError.connectionRefused {
                matched = true
            }
            #expect(matched)
            // The failed connections' handles were closed.
        }
    }

    @Test func aConnectTimeoutThatDoesNotFireLeavesNothingBehind() async throws {
        try await withLoop("connect-timeout-ok") { loop in
            let server = TestServer(on: loop, echo: .frames)
            let address = try await server.listen()
            let client = Peer(try await TCPConnection.connect(on: loop, to: address, timeout: .seconds(60)), on: loop)
            await client.startReading()
            try await waitUntil("the server accepted") { await server.peers.count == 1 }
            // The listener and the two ends: the timeout's timer is gone.
            try await waitUntil("the connect timer closed") { try await openResources(loop) == 3 }
            await client.write([1, 2])
            try await waitUntil("the echo arrived") { await client.frameCount == 1 }
            await client.close()
            await server.closeAll()
        }
    }

    @Test func aConnectionNobodyAcceptsTimesOut() async throws {
        try await withLoop("timeout-server") { serverLoop in
            try await withLoop("timeout-client") { clientLoop in
                let server = TestServer(on: serverLoop, echo: .none)
                let address = try await server.listen(backlog: 1)
                // Hold the server's loop in a job, so it accepts nothing: once the kernel's accept
                // queue (backlog + 1) is full, it drops further connection requests.
                let blocked = Locked(false)
                let release = Locked(false)
                serverLoop.execute {
                    blocked.withLock { $0 = true }
                    while !release.value { usleep(500) }
                }
                try await waitUntil("the server loop is held") { blocked.value }

                var connected: [TCPConnection] = []
                var failure: (any Error)?
                for _ in 0..<16 {
                    do {
                        connected.append(
                            try await TCPConnection.connect(on: clientLoop, to: address, timeout: .milliseconds(200)))
                    } catch {
                        failure = error
                        break
                    }
                }
                release.withLock { $0 = true }
                let error = try #require(
                    failure as? UVError, "\(connected.count) connections, then \(String(describing: failure))")
                #expect(error == .timedOut)
                #expect(error.description == "connect to \(address) failed: ETIMEDOUT: connection timed out")
                #expect(connected.count >= 1)

                // Once the server's loop runs again it accepts the queued connections; all close cleanly.
                try await waitUntil("the server accepted the queued connections") {
                    await server.peers.count == connected.count
                }
                let toClose = connected
                try await clientLoop.perform { for connection in toClose { connection.close() } }
                try await waitUntil("the server sides closed") {
                    await server.closeReasons().allSatisfy { $0 == .peerClosed }
                }
                await server.closeListener()
            }
        }
    }

    @Test func bothEndsKnowTheirAddresses() async throws {
        try await withLoop("addresses") { loop in
            let server = TestServer(on: loop, echo: .none)
            let address = try await server.listen()
            let client = try await connectPeer(on: loop, to: address)
            try await waitUntil("the server accepted") { await server.peers.count == 1 }
            let serverSide = try #require(await server.peers.first)

            let clientLocal = try #require(await client.localAddress)
            #expect(await client.remoteAddress == address)
            #expect(clientLocal.host == "127.0.0.1")
            #expect(clientLocal.port != 0 && clientLocal.port != address.port)
            #expect(await serverSide.remoteAddress == clientLocal)
            #expect(await serverSide.localAddress == address)
            #expect(await client.connectionID != serverSide.connectionID)

            await client.close()
            try await waitUntil("the server side closed") { await serverSide.closeReason == .peerClosed }
            // A closed connection has no addresses any more.
            #expect(await client.remoteAddress == nil)
            await server.closeListener()
        }
    }
}

@testable import Devts
import DevtsRuntime
import Testing

@Suite("Membership edge cases")
struct MembershipEdgeTests {
    @Test("two nodes joining at once through different members still end in a full mesh")
    func concurrentJoinsThroughDifferentSeeds() async throws {
        let s1 = try await Node.start(config(name: "s1"))
        let s2 = try await Node.start(config(join: [await s1.address], name: "s2"))
        let (seed1, seed2) = (await s1.address, await s2.address)
        async let joining1 = Node.start(config(join: [seed1], name: "j1"))
        async let joining2 = Node.start(config(join: [seed2], name: "j2"))
        let (j1, j2) = try await (joining1, joining2)
        let all = [s1, s2, j1, j2]
        for node in all {
            #expect(await waitUntil(timeout: .seconds(15)) { await node.members.count == 4 }, "\(node.name)")
        }
        try await shutDownAll(all)
    }

    @Test("a seed that completes the handshake but never sends the member list is not left as a member")
    func silentSeedIsNotAGhost() async throws {
        let loop = try EventLoop(name: "fake-seed")
        let fakeID = NodeID.random()
        let listener = try await TCPListener.listen(on: loop, address: try SocketAddress(parsing: "127.0.0.1:0")) { connection in
            connection.startReading(onFrames: { batch in
                for frame in batch where (try? WireMessage.decode(frame))?.typeName == "HELLO" {
                    connection.write(frame: WireMessage.helloAck(NodeInfo(
                        id: fakeID, incarnation: 0, name: "fake", address: "127.0.0.1:1")).encoded())
                }
            }, onClose: { _ in })
        }
        var quick = config(join: [listener.address], name: "j")
        quick.joinTimeout = .milliseconds(300)
        let node = try await Node.start(quick)
        #expect(await node.bootstrapped)
        #expect(await node.members.map(\.id) == [node.id])
        try await node.shutdown()
        await loop.submitVoid { listener.close() }
        try await loop.shutdown()
    }

    @Test("a member whose connection drops and comes back is reported failed and joined again")
    func reconnectIsReported() async throws {
        let nodes = try await startCluster(2)
        let (a, b) = (nodes[0], nodes[1])
        #expect(await waitUntil { await b.members.count == 2 })
        let changes = await b.membershipChanges()
        _ = try await a.inspect { node in node.memberLinks[b.id]?.connection.close() }
        var seen: [Cluster.MembershipChange.Kind] = []
        for await change in changes where change.member.id == a.id {
            seen.append(change.kind)
            if seen.count == 2 { break }
        }
        // Broadcasts sent meanwhile may not have reached it: stores above must resynchronize.
        #expect(seen == [.failed, .joined])
        #expect(await b.member(a.id)?.status == .alive)
        try await shutDownAll(nodes)
    }

    @Test("shutdown called twice at once waits for the one graceful leave")
    func concurrentShutdowns() async throws {
        let nodes = try await startCluster(2)
        let (a, b) = (nodes[0], nodes[1])
        #expect(await waitUntil { await a.members.count == 2 })
        let changes = await a.membershipChanges()
        async let first: Void = b.shutdown()
        async let second: Void = b.shutdown()
        _ = try await (first, second)
        for await change in changes {
            #expect(change.kind == .left)
            break
        }
        try await a.shutdown()
    }
}

import Devts
import Glibc
import DevtsRuntime
import Testing

@Suite("Cluster membership")
struct ClusterMembershipTests {
    @Test("five nodes in one process all see five members")
    func fiveNodesSeeFive() async throws {
        let nodes = try await startCluster(5)
        let ids = Set(nodes.map(\.id))
        for node in nodes {
            let converged = await waitUntil { Set(await node.members.map(\.id)) == ids }
            let seen = await node.members.count
            #expect(converged, "node \(node.name) sees \(seen) members")
            #expect(await node.members.allSatisfy { $0.status == .alive })
        }
        #expect(await nodes[0].bootstrapped)
        #expect(await !nodes[4].bootstrapped)
        try await shutDownAll(nodes)
    }

    @Test("a node joins through any member, not only the first")
    func joinThroughAnyMember() async throws {
        let a = try await Node.start(config(name: "a"))
        let b = try await Node.start(config(join: [await a.address], name: "b"))
        let c = try await Node.start(config(join: [await b.address], name: "c"))
        for node in [a, b, c] {
            #expect(await waitUntil { await node.members.count == 3 })
        }
        try await shutDownAll([a, b, c])
    }

    @Test("the first answering address is used; unreachable ones are skipped")
    func skipsDeadJoinAddresses() async throws {
        let closed = try ClosedPort()
        let dead = closed.address
        let a = try await Node.start(config(name: "a"))
        let b = try await Node.start(config(join: [dead, await a.address], name: "b"))
        #expect(await !b.bootstrapped)
        #expect(await waitUntil { await b.members.count == 2 })
        try await shutDownAll([a, b])
    }

    @Test("two clusters with different names do not merge")
    func differentClustersRefuseEachOther() async throws {
        let red = try await Node.start(config(cluster: "red", name: "red-1"))
        // Told to join the red node, a blue node is refused and starts a cluster of its own.
        let blue = try await Node.start(config(join: [await red.address], cluster: "blue", name: "blue-1"))
        #expect(await blue.bootstrapped)
        #expect(await blue.members.map(\.id) == [blue.id])
        #expect(await red.members.map(\.id) == [red.id])
        #expect(await red.statistics.handshakesRejected == 1)
        // And a blue node that must join fails with a clear error naming the refusal.
        let error = await #expect(throws: NodeError.self) {
            try await Node.start(config(join: [await red.address], cluster: "blue", requireJoin: true))
        }
        #expect(error?.code == .joinFailed)
        #expect(error?.message.contains("cluster 'blue' is not 'red'") == true)
        try await shutDownAll([red, blue])
    }

    @Test("a node told it must join fails cleanly when nothing answers")
    func requireJoinFailsCleanly() async throws {
        let closed = try ClosedPort()
        let dead = closed.address
        let error = await #expect(throws: NodeError.self) {
            try await Node.start(config(join: [dead], requireJoin: true))
        }
        closed.release()
        #expect(error?.code == .joinFailed)
        #expect(error?.message.contains(dead.description) == true)
    }

    @Test("a graceful leave is reported as left at once, a lost node as failed")
    func leaveAndFailure() async throws {
        let nodes = try await startCluster(3)
        for node in nodes { #expect(await waitUntil { await node.members.count == 3 }) }
        let changes = await nodes[0].membershipChanges()
        let leaver = nodes[1]
        let victim = nodes[2]
        try await leaver.shutdown()
        try await victim.terminate()
        var seen: [Cluster.MembershipChange] = []
        for await change in changes {
            seen.append(change)
            if seen.count == 2 { break }
        }
        #expect(seen.contains { $0.kind == .left && $0.member.id == leaver.id })
        #expect(seen.contains { $0.kind == .failed && $0.member.id == victim.id })
        #expect(await nodes[0].members.map(\.id) == [nodes[0].id])
        try await nodes[0].shutdown()
    }

    @Test("calls after shutdown throw instead of crashing")
    func callsAfterShutdown() async throws {
        let node = try await Node.start(config())
        try await node.shutdown()
        try await node.shutdown()
        await #expect(throws: NodeError.self) { try await node.broadcast("x", [1]) }
    }

    @Test("invalid configuration is refused with a clear error")
    func invalidConfiguration() async throws {
        var bad = config()
        bad.cluster = ""
        let error = await #expect(throws: NodeError.self) { try await Node.start(bad) }
        #expect(error?.code == .invalidConfiguration)
    }
}

/// A port on 127.0.0.1 where nothing listens, held (bound, not listening) until `release()`, so
/// that no test running meanwhile can be given it: connecting there is refused.
final class ClosedPort: @unchecked Sendable {
    let address: SocketAddress
    private var descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard descriptor >= 0, bound else {
            if descriptor >= 0 { close(descriptor) }
            throw HarnessError("cannot reserve a port on 127.0.0.1")
        }
        self.descriptor = descriptor
        self.address = try SocketAddress(host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Frees the port.
    func release() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    deinit { release() }
}

@testable import Devts
import DevtsRuntime
import Testing

/// Peers that flood, forge or stall: each is contained to its own connection.
@Suite("Hostile peers")
struct HostilePeerTests {
    @Test("a tool that floods queries and never reads the answers is throttled: the queue stays bounded")
    func queryFloodIsThrottled() async throws {
        let a = try await Node.start(config(name: "a"))
        let flood = try await RawPeer(to: await a.address, read: false)
        await flood.send([RawPeer.clientHello])
        for _ in 0..<20 { await flood.send(Array(repeating: .membersQuery, count: 20_000)) }
        // Once the answers pass the high-water mark, the node stops reading that connection...
        #expect(await waitUntil {
            (try? await a.inspect { node in node.links.values.contains { $0.phase == .client && $0.throttled } }) == true
        })
        // ...so what it queues stays near the mark (8 MiB) instead of following the 400k queries.
        let queued = try await a.inspect { node in node.links.values.map(\.connection.queuedBytes).max() ?? 0 }
        #expect(queued < 12 * 1024 * 1024)
        try await flood.close()
        try await a.shutdown()
    }

    @Test("an event with another node's origin is a forgery: the forger's connection closes, nothing is delivered")
    func forgedOriginIsRejected() async throws {
        let nodes = try await startCluster(2)
        let (a, b) = (nodes[0], nodes[1])
        #expect(await waitUntil { await a.members.count == 2 })
        let delivered = Collector<String>()
        await a.on("x") { delivered.append($0.text ?? "") }
        let forger = try await RawPeer(to: await a.address)
        await forger.send([RawPeer.memberHello(), .event(origin: b.id, sequence: .max, name: "x", payload: ArraySlice("forged".utf8))])
        #expect(await waitUntil { forger.closes.count == 1 })
        #expect(await a.statistics.framesRejected >= 1)
        // b's own broadcasts still arrive: its sequence was not poisoned.
        try await b.broadcast("x", Array("real".utf8))
        #expect(await waitUntil { delivered.count == 1 })
        #expect(delivered.all == ["real"])
        try await forger.close()
        try await shutDownAll(nodes)
    }

    @Test("a connection that never completes its handshake is closed after the join timeout")
    func silentConnectionIsClosed() async throws {
        var quick = config(name: "a")
        quick.joinTimeout = .milliseconds(200)
        let a = try await Node.start(quick)
        let silent = try await RawPeer(to: await a.address)
        #expect(await waitUntil { silent.closes.count == 1 })
        #expect(try await a.inspect { $0.links.isEmpty })
        try await silent.close()
        try await a.shutdown()
    }

    @Test("before the handshake, a frame over 64 KiB closes the connection: no large buffer for strangers")
    func largeFrameBeforeHandshake() async throws {
        let a = try await Node.start(config(name: "a"))
        let stranger = try await RawPeer(to: await a.address)
        await stranger.send([.event(origin: .random(), sequence: 1, name: "x", payload: ArraySlice([UInt8](repeating: 0, count: 70_000)))])
        #expect(await waitUntil { stranger.closes.count == 1 })
        try await stranger.close()
        try await a.shutdown()
    }

    @Test("a reply larger than the frame limit fails the request with a clear error, at once")
    func oversizedReplyFailsClearly() async throws {
        var small = config(name: "a")
        small.maxFrameSize = 64 * 1024
        let a = try await Node.start(small)
        small.name = "b"
        small.join = [await a.address]
        let b = try await Node.start(small)
        #expect(await waitUntil { await a.members.count == 2 })
        await b.respond(to: "big") { _ in [UInt8](repeating: 7, count: 100_000) }
        let error = await #expect(throws: NodeError.self) { try await a.request(b.id, "big", [], timeout: .seconds(30)) }
        #expect(error?.code == .handlerFailed)
        #expect(error?.message.contains("exceeds the frame limit") == true)
        #expect(await a.members.count == 2)  // the link between them is intact
        try await shutDownAll([a, b])
    }
}

import Devts
import DevtsRuntime
import Testing

struct PriceTick: TypedEvent, Equatable {
    static let eventName = "tick"
    var counter: UInt64
    var symbol: String
    var price: Double
}

@Suite("Cluster events")
struct ClusterEventTests {
    @Test("10,000 broadcasts from each of 2 origins reach every node exactly once, in each origin's order")
    func broadcastsExactlyOnceInOrder() async throws {
        let nodes = try await startCluster(4)
        for node in nodes { #expect(await waitUntil { await node.members.count == 4 }) }
        let perOrigin = 10_000
        var received: [Collector<(NodeID, UInt64)>] = []
        for node in nodes {
            let collector = Collector<(NodeID, UInt64)>()
            received.append(collector)
            await node.on("seq") { event in
                let value = event.payload.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                collector.append((event.origin, value))
            }
        }
        let origins = [nodes[0], nodes[2]]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for origin in origins {
                group.addTask {
                    // Half in batches, half one call each: both paths keep the order.
                    let batch = (0..<UInt64(perOrigin / 2)).map { bigEndianBytes($0) }
                    try await origin.broadcast("seq", payloads: batch)
                    for value in UInt64(perOrigin / 2)..<UInt64(perOrigin) {
                        try await origin.broadcast("seq", bigEndianBytes(value))
                    }
                }
            }
            try await group.waitForAll()
        }
        for (index, collector) in received.enumerated() {
            let complete = await waitUntil(timeout: .seconds(30)) { collector.count >= 2 * perOrigin }
            #expect(complete, "node \(index) got \(collector.count) of \(2 * perOrigin)")
            for origin in origins {
                let values = collector.all.filter { $0.0 == origin.id }.map(\.1)
                #expect(values == Array(0..<UInt64(perOrigin)), "node \(index), origin \(origin.name)")
            }
            #expect(collector.count == 2 * perOrigin)
        }
        try await shutDownAll(nodes)
    }

    @Test("send reaches only its target; excluding self works")
    func sendReachesOnlyTarget() async throws {
        let nodes = try await startCluster(3)
        for node in nodes { #expect(await waitUntil { await node.members.count == 3 }) }
        let collectors = nodes.map { _ in Collector<String>() }
        for (node, collector) in zip(nodes, collectors) {
            await node.on("note") { collector.append("\($0.kind == .direct ? "direct" : "broadcast"):\($0.text ?? "")") }
        }
        try await nodes[0].send(to: nodes[2].id, "note", Array("for-c".utf8))
        try await nodes[0].broadcast("note", Array("all-but-me".utf8), includeSelf: false)
        #expect(await waitUntil { collectors[2].count == 2 && collectors[1].count == 1 })
        #expect(collectors[2].all == ["direct:for-c", "broadcast:all-but-me"])
        #expect(collectors[1].all == ["broadcast:all-but-me"])
        #expect(collectors[0].all.isEmpty)
        await #expect(throws: NodeError.self) { try await nodes[0].send(to: NodeID.random(), "note", [1]) }
        try await shutDownAll(nodes)
    }

    @Test("a request gets its reply, times out against a silent node, fails for an unknown id")
    func requestReplyTimeoutUnknown() async throws {
        let nodes = try await startCluster(2)
        let (a, b) = (nodes[0], nodes[1])
        #expect(await waitUntil { await a.members.count == 2 })
        await b.respond(to: "upper") { event in Array((event.text ?? "").uppercased().utf8) }
        await b.on("silent") { _ in }  // listens, never replies
        let reply = try await a.request(b.id, "upper", Array("hello".utf8))
        #expect(reply == Array("HELLO".utf8))

        let timeout = await #expect(throws: NodeError.self) {
            try await a.request(b.id, "silent", [1], timeout: .milliseconds(200))
        }
        #expect(timeout?.code == .requestTimedOut)

        let unknown = await #expect(throws: NodeError.self) { try await a.request(NodeID.random(), "upper", [1]) }
        #expect(unknown?.code == .unknownMember)

        let noHandler = await #expect(throws: NodeError.self) { try await a.request(b.id, "nobody-listens", [1]) }
        #expect(noHandler?.code == .noHandler)

        await b.respond(to: "fail") { _ in throw NodeError(.invalidConfiguration, "boom") }
        let failed = await #expect(throws: NodeError.self) { try await a.request(b.id, "fail", [1]) }
        #expect(failed?.code == .handlerFailed)
        #expect(failed?.message.contains("boom") == true)

        // A request to oneself is answered locally.
        await a.respond(to: "self") { _ in [42] }
        #expect(try await a.request(a.id, "self", []) == [42])
        try await shutDownAll(nodes)
    }

    @Test("a pending request fails when its target leaves")
    func requestFailsWhenTargetLeaves() async throws {
        let nodes = try await startCluster(2)
        let (a, b) = (nodes[0], nodes[1])
        #expect(await waitUntil { await a.members.count == 2 })
        await b.on("silent") { _ in }
        let pending = Task { try await a.request(b.id, "silent", [1], timeout: .seconds(30)) }
        // Wait until the request is on its way, then make its target leave.
        #expect(await waitUntil { await a.statistics.messagesSent == 1 })
        try await b.shutdown()
        let error = await #expect(throws: NodeError.self) { try await pending.value }
        #expect(error?.code == .memberUnavailable)
        try await a.shutdown()
    }

    @Test("typed events round-trip through the binary encoding, as streams and in batches")
    func typedEvents() async throws {
        let nodes = try await startCluster(2)
        let (a, b) = (nodes[0], nodes[1])
        #expect(await waitUntil { await b.members.count == 2 })
        let ticks = await b.events(of: PriceTick.self)
        let batches = await b.eventBatches(named: ["tick"])
        let sent = (0..<100).map { PriceTick(counter: UInt64($0), symbol: "ACME", price: Double($0) / 4) }
        for tick in sent { try await a.broadcast(tick) }
        var got: [PriceTick] = []
        for await tick in ticks {
            got.append(tick)
            if got.count == sent.count { break }
        }
        #expect(got == sent)
        var batched = 0
        for await batch in batches {
            batched += batch.count
            #expect(batch.allSatisfy { $0.name == "tick" })
            if batched == sent.count { break }
        }
        #expect(batched == sent.count)
        try await shutDownAll(nodes)
    }
}

func bigEndianBytes(_ value: UInt64) -> [UInt8] {
    (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

@testable import Devts
import DevtsRuntime
import Testing

/// What a misbehaving peer can do to a node: nothing beyond losing its own connection.
@Suite("Bad peers")
struct BadPeerTests {
    /// Opens a raw connection to `address`, sends `bytes` as they are, and waits for the node to
    /// close it; returns how it closed.
    func sendRaw(_ bytes: [UInt8], to address: SocketAddress) async throws -> TCPConnection.CloseReason {
        let loop = try EventLoop(name: "bad-peer")
        let reasons = Collector<TCPConnection.CloseReason>()
        let connection = try await TCPConnection.connect(on: loop, to: address)
        await loop.submitVoid {
            connection.startReading(onFrames: { _ in }, onClose: { reasons.append($0) })
            bytes.withUnsafeBytes { connection.writeRaw($0) }
        }
        let closed = await waitUntil { reasons.count == 1 }
        #expect(closed, "the node did not close the connection")
        try await loop.shutdown()
        return reasons.all.first ?? .local
    }

    @Test("garbage, unknown frames, oversized frames and wrong clusters close only that connection")
    func garbageClosesOnlyThatConnection() async throws {
        let nodes = try await startCluster(2)
        let (a, b) = (nodes[0], nodes[1])
        #expect(await waitUntil { await a.members.count == 2 })
        let received = Collector<String>()
        await b.on("ok") { received.append($0.text ?? "") }
        let address = await a.address
        let hello = WireMessage.hello(Hello(role: .member, cluster: "test", node: NodeInfo(
            id: NodeID.random(), incarnation: 0, name: "evil", address: "127.0.0.1:1"))).encoded()

        let inputs: [(String, [UInt8])] = [
            ("not a frame before the handshake", framed([99, 1, 2, 3])),
            ("an event before the handshake", framed(WireMessage.event(origin: a.id, sequence: 1, name: "ok", payload: []).encoded())),
            ("a frame over the maximum size", [0x7f, 0xff, 0xff, 0xff, 1, 2, 3]),
            ("a handshake for another cluster", framed(WireMessage.hello(Hello(role: .member, cluster: "other", node: NodeInfo(
                id: NodeID.random(), incarnation: 0, name: "x", address: "127.0.0.1:1"))).encoded())),
            ("a truncated frame after a valid handshake", framed(hello) + framed([FrameType.event.rawValue, 1, 2])),
        ]
        for (index, (what, bytes)) in inputs.enumerated() {
            _ = try await sendRaw(bytes, to: address)
            // The real member still gets events through the same node.
            try await a.broadcast("ok", Array("\(index)".utf8))
            #expect(await waitUntil { received.count == index + 1 }, "after \(what)")
        }
        #expect(received.all == inputs.indices.map { "\($0)" })
        let stats = await a.statistics
        #expect(stats.framesRejected >= 3)
        #expect(stats.handshakesRejected == 1)
        // The impostor that completed a handshake and then broke the protocol is dropped as failed.
        #expect(await waitUntil { await a.members.count == 2 })
        try await shutDownAll(nodes)
    }
}

/// Prefixes `body` with its 4-byte big-endian length.
func framed(_ body: [UInt8]) -> [UInt8] {
    let n = UInt32(body.count)
    return [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + body
}

extension EventLoop {
    /// Runs `body` on the loop and waits for it.
    func submitVoid(_ body: @escaping @Sendable () -> Void) async {
        _ = try? await submit { body() }
    }
}

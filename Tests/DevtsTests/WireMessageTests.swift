@testable import Devts
import DevtsRuntime
import Testing

@Suite("Wire messages")
struct WireMessageTests {
    static let node = NodeInfo(id: NodeID(high: 1, low: 2), incarnation: 3, name: "nöde-1", address: "127.0.0.1:7946")

    static let samples: [WireMessage] = [
        .hello(Hello(role: .member, cluster: "prod", node: node)),
        .hello(Hello(role: .client, cluster: "", node: node)),
        .helloAck(node),
        .reject(code: RejectCode.clusterMismatch.rawValue, reason: "cluster 'a' is not 'b'"),
        .joinRequest,
        .memberList([node, NodeInfo(id: NodeID.random(), incarnation: 0, name: "", address: "[::1]:1")]),
        .memberList([]),
        .memberJoined(node),
        .leave(NodeID.random()),
        .event(origin: NodeID.random(), sequence: .max, name: "tick", payload: [1, 2, 3]),
        .event(origin: NodeID.random(), sequence: 0, name: "e", payload: []),
        .message(origin: NodeID.random(), name: "direct", payload: ArraySlice(Array("hi".utf8))),
        .request(origin: NodeID.random(), requestID: 7, name: "echo", payload: [0xff]),
        .reply(requestID: 7, status: ReplyStatus.noHandler.rawValue, payload: []),
        .clientEmit(requestID: 9, name: "x", payload: [9, 9]),
        .membersQuery,
    ]

    @Test("every frame type round-trips byte for byte", arguments: samples.indices)
    func roundTrip(_ index: Int) throws {
        let bytes = Self.samples[index].encoded()
        let decoded = try WireMessage.decode(ArraySlice(bytes))
        #expect(decoded.encoded() == bytes)
        #expect(decoded.typeName == Self.samples[index].typeName)
    }

    @Test("every truncation of a valid frame is an error, never a crash")
    func truncations() {
        for sample in Self.samples {
            let bytes = sample.encoded()
            for length in 0..<bytes.count {
                #expect(throws: WireError.self) { try WireMessage.decode(ArraySlice(bytes[0..<length])) }
            }
            #expect(throws: WireError.self) { try WireMessage.decode(ArraySlice(bytes + [0])) }
        }
    }

    @Test("random bytes and bit flips decode or fail cleanly")
    func fuzz() {
        var rng = SeededRandom(seed: 0xDE57)
        var decodedCount = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if !bytes.isEmpty { bytes[0] = UInt8(rng.next() % 16) }
            } else {
                bytes = Self.samples[Int(rng.next() % UInt64(Self.samples.count))].encoded()
                let flips = 1 + Int(rng.next() % 3)
                for _ in 0..<flips {
                    let at = Int(rng.next() % UInt64(bytes.count))
                    bytes[at] ^= UInt8(1 << (rng.next() % 8))
                }
            }
            if let message = try? WireMessage.decode(ArraySlice(bytes)) {
                decodedCount += 1
                // Whatever decodes must encode back to a frame that decodes the same way.
                #expect((try? WireMessage.decode(ArraySlice(message.encoded())))?.encoded() == message.encoded())
            }
        }
        #expect(decodedCount > 0)
    }

    @Test("specific bad frames get specific errors")
    func specificErrors() throws {
        #expect(throws: WireError.self) { try WireMessage.decode([]) }
        let unknown = #expect(throws: WireError.self) { try WireMessage.decode([200]) }
        #expect(unknown?.message == "unknown frame type 200")
        // A member list claiming 2^32-1 members in a few bytes is refused before any allocation.
        let huge = #expect(throws: WireError.self) {
            try WireMessage.decode([FrameType.memberList.rawValue, 0xff, 0xff, 0xff, 0xff, 0, 0])
        }
        #expect(huge?.message.contains("cannot fit") == true)
        // A payload length larger than the frame.
        var event = WireMessage.event(origin: NodeID.random(), sequence: 1, name: "n", payload: [1]).encoded()
        event.replaceSubrange((event.count - 5)..<(event.count - 1), with: [0x7f, 0xff, 0xff, 0xff])
        #expect(throws: WireError.self) { try WireMessage.decode(ArraySlice(event)) }
        // Invalid UTF-8 in a name.
        var bad = WireMessage.event(origin: NodeID.random(), sequence: 1, name: "ab", payload: []).encoded()
        bad[1 + 16 + 8 + 2] = 0xC3
        bad[1 + 16 + 8 + 3] = 0x28
        let utf8 = #expect(throws: WireError.self) { try WireMessage.decode(ArraySlice(bad)) }
        #expect(utf8?.message.contains("UTF-8") == true)
        // Wrong magic.
        var hello = WireMessage.hello(Hello(role: .member, cluster: "c", node: Self.node)).encoded()
        hello[1] = 0
        let magic = #expect(throws: WireError.self) { try WireMessage.decode(ArraySlice(hello)) }
        #expect(magic?.message.contains("not a Devts peer") == true)
    }

    @Test("decoding a slice in the middle of a larger buffer reads only that slice")
    func sliceOffsets() throws {
        let frame = WireMessage.event(origin: NodeID(high: 5, low: 6), sequence: 42, name: "mid", payload: [7, 8]).encoded()
        let buffer = [0xAA, 0xBB, 0xCC] + frame + [0xDD]
        let decoded = try WireMessage.decode(buffer[3..<(3 + frame.count)])
        guard case .event(let origin, let sequence, let name, let payload) = decoded else {
            Issue.record("decoded \(decoded.typeName)")
            return
        }
        #expect(origin == NodeID(high: 5, low: 6))
        #expect(sequence == 42)
        #expect(name == "mid")
        #expect(Array(payload) == [7, 8])
    }
}

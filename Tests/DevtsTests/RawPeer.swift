@testable import Devts
import DevtsRuntime

/// A hand-driven peer on a loop of its own: sends whatever frames a test wants and records what
/// comes back, for tests of how a node treats misbehaving peers.
final class RawPeer: @unchecked Sendable {
    let loop: EventLoop
    let connection: TCPConnection
    let frames = Collector<[UInt8]>()
    let closes = Collector<TCPConnection.CloseReason>()

    /// Connects to `address`; reads (and records) what arrives unless `read` is false.
    init(to address: SocketAddress, read: Bool = true) async throws {
        loop = try EventLoop(name: "raw-peer")
        connection = try await TCPConnection.connect(on: loop, to: address)
        let (connection, frames, closes) = (connection, frames, closes)
        await loop.submitVoid {
            if read {
                connection.startReading(onFrames: { batch in for frame in batch { frames.append(Array(frame)) } },
                                        onClose: { closes.append($0) })
            }
        }
    }

    /// Queues `messages`, encoded, in order.
    func send(_ messages: [WireMessage]) async {
        let (connection, bodies) = (connection, messages.map { $0.encoded() })
        await loop.submitVoid { for body in bodies { connection.write(frame: body) } }
    }

    /// A member HELLO for `id` in cluster "test".
    static func memberHello(_ id: NodeID = .random(), name: String = "raw") -> WireMessage {
        .hello(Hello(role: .member, cluster: "test", node: NodeInfo(id: id, incarnation: 0, name: name, address: "127.0.0.1:1")))
    }

    /// A client HELLO in cluster "test".
    static let clientHello = WireMessage.hello(Hello(
        role: .client, cluster: "test", node: NodeInfo(id: .random(), incarnation: 0, name: "tool", address: "0.0.0.0:0")))

    func close() async throws {
        let connection = self.connection
        await loop.submitVoid { connection.close() }
        try await loop.shutdown()
    }
}

extension Node {
    /// Runs `body` on the node's loop, isolated to the node (for white-box checks in tests).
    func inspect<T: Sendable>(_ body: @escaping @Sendable (isolated Node) -> T) async throws -> T {
        try await loop.submit { [self] in self.assumeIsolated { body($0) } }
    }
}

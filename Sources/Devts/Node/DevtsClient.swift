import DevtsRuntime

/// Asks one node of a cluster something without joining: the member list, or a broadcast on the
/// tool's behalf. What `devts members --via` and `devts emit --via` use.
///
/// Each call opens a connection (on a loop of its own), does the handshake as a client, asks,
/// and closes everything before returning.
public enum DevtsClient {
    /// The members that the node at `address` sees, itself included.
    ///
    /// - Throws: `NodeError` `.rejected` (another cluster), `.memberUnavailable` (no answer within
    ///   `timeout`), or the connection's `UVError`.
    public static func members(
        via address: SocketAddress, cluster: String = "devts", timeout: Duration = .seconds(5)
    ) async throws -> [Cluster.Member] {
        try await withSession(address, cluster: cluster, timeout: timeout) { session in
            guard case .memberList(let list) = try await session.ask(.membersQuery) else {
                throw NodeError(.rejected, "\(address) answered the member query with something else")
            }
            return list.map { Cluster.Member(id: $0.id, name: $0.name, address: $0.address, status: .alive) }
        }
    }

    /// Broadcasts an event through the node at `address`, as if that node had sent it.
    ///
    /// - Throws: `NodeError` `.handlerFailed` with the node's reason when it refused (e.g. too
    ///   large), and the errors of `members(via:cluster:timeout:)`.
    public static func emit(
        via address: SocketAddress, name: String, payload: [UInt8], cluster: String = "devts",
        timeout: Duration = .seconds(5)
    ) async throws {
        guard !name.isEmpty, name.utf8.count <= Int(UInt16.max) else {
            throw NodeError(.tooLarge, "an event name must be 1 to 65535 bytes of UTF-8")
        }
        try await withSession(address, cluster: cluster, timeout: timeout) { session in
            let answer = try await session.ask(.clientEmit(requestID: 1, name: name, payload: ArraySlice(payload)))
            guard case .reply(_, let status, let message) = answer else {
                throw NodeError(.rejected, "\(address) answered the emit with something else")
            }
            if status != ReplyStatus.ok.rawValue {
                throw NodeError(.handlerFailed, "\(address) refused the event: \(String(decoding: message, as: UTF8.self))")
            }
        }
    }

    private static func withSession<T: Sendable>(
        _ address: SocketAddress, cluster: String, timeout: Duration,
        _ body: (ClientSession) async throws -> T
    ) async throws -> T {
        let loop = try EventLoop(name: "devts-client")
        let session = ClientSession(loop: loop, timeout: timeout)
        do {
            try await session.open(address, cluster: cluster)
            let result = try await body(session)
            await session.close()
            try await loop.shutdown()
            return result
        } catch {
            await session.close()
            try? await loop.shutdown()
            throw error
        }
    }
}

/// One client connection: send a frame, wait for the answer. Pinned to its own loop.
private actor ClientSession {
    nonisolated let loop: EventLoop
    let timeout: Duration
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    private var connection: TCPConnection?
    private var answers: [WireMessage] = []
    private var waiter: CheckedContinuation<WireMessage, any Error>?
    private var failure: (any Error)?
    private var deadline: LoopTimer?
    private let id = NodeID.random()

    init(loop: EventLoop, timeout: Duration) {
        self.loop = loop
        self.timeout = timeout
    }

    func open(_ address: SocketAddress, cluster: String) async throws {
        let connection = try await TCPConnection.connect(on: loop, to: address, timeout: timeout)
        self.connection = connection
        connection.startReading(
            onFrames: { [unowned self] batch in self.assumeIsolated { $0.received(batch) } },
            onClose: { [unowned self] reason in
                self.assumeIsolated { $0.fail(NodeError(.memberUnavailable, "\(address) closed the connection: \(reason)")) }
            })
        let hello = Hello(role: .client, cluster: cluster,
                          node: NodeInfo(id: id, incarnation: 0, name: "devts-client", address: "0.0.0.0:0"))
        switch try await ask(.hello(hello)) {
        case .helloAck: return
        case .reject(_, let reason): throw NodeError(.rejected, "\(address) refused the handshake: \(reason)")
        default: throw NodeError(.rejected, "\(address) broke the handshake")
        }
    }

    func ask(_ message: WireMessage) async throws -> WireMessage {
        guard let connection, connection.isOpen else {
            throw failure ?? NodeError(.memberUnavailable, "the connection is closed")
        }
        connection.write(frame: message.encoded())
        if !answers.isEmpty { return answers.removeFirst() }
        return try await withCheckedThrowingContinuation { continuation in
            waiter = continuation
            deadline = loop.schedule(after: timeout) { [unowned self] in
                self.assumeIsolated { $0.fail(NodeError(.memberUnavailable, "no answer within \(self.timeout)")) }
            }
        }
    }

    private func received(_ batch: FrameBatch) {
        for frame in batch {
            do {
                let message = try WireMessage.decode(frame)
                if let waiter {
                    self.waiter = nil
                    deadline?.close()
                    waiter.resume(returning: message)
                } else if answers.isEmpty {
                    answers.append(message)  // arrived before `ask` started waiting
                } else {
                    // One answer per question: more is a misbehaving node; do not buffer it.
                    fail(NodeError(.rejected, "unexpected \(message.typeName) from the node"))
                    connection?.close()
                    return
                }
            } catch {
                fail(NodeError(.rejected, "malformed answer: \(error)"))
                connection?.close()
                return
            }
        }
    }

    private func fail(_ error: any Error) {
        failure = failure ?? error
        deadline?.close()
        deadline = nil
        if let waiter {
            self.waiter = nil
            waiter.resume(throwing: error)
        }
    }

    func close() {
        deadline?.close()
        connection?.close()
    }
}

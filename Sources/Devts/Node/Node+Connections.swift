import DevtsRuntime
import Logging

extension Node {
    /// Starts listening on the configured address and sets the advertised address.
    func listen() throws(NodeError) {
        do {
            let listener = try TCPListener(
                on: loop, address: configuration.listen, maxFrameSize: configuration.maxFrameSize
            ) { [unowned self] connection in
                self.assumeIsolated { $0.accepted(connection) }
            }
            self.listener = listener
            if let advertise = configuration.advertise {
                address = advertise
            } else if listener.address.isUnspecified {
                address = (try? SocketAddress(host: "127.0.0.1", port: listener.address.port)) ?? listener.address
                logger.warning("listening on \(listener.address); advertising \(address): set an advertise address for other hosts")
            } else {
                address = listener.address
            }
        } catch {
            throw NodeError(.listenFailed, "cannot listen on \(configuration.listen)", cause: error)
        }
    }

    /// Registers a connection and starts reading from it.
    @discardableResult
    func adopt(_ connection: TCPConnection, dialled: Bool) -> Link {
        let link = Link(connection: connection, dialled: dialled)
        links[link.id] = link
        connection.maxFrameSize = Self.handshakeFrameLimit
        connection.startReading(
            onFrames: { [unowned self] batch in
                self.assumeIsolated { $0.received(batch, on: link) }
            },
            onClose: { [unowned self] reason in
                self.assumeIsolated { $0.closed(link, reason: reason) }
            }
        )
        return link
    }

    private func accepted(_ connection: TCPConnection) {
        guard state == .running || state == .starting else {
            connection.close()
            return
        }
        startHandshakeDeadline(adopt(connection, dialled: false))
    }

    /// Connects to `address` and completes the handshake as `role`, within `timeout`.
    ///
    /// - Returns: the link, in phase `.member` or `.client`.
    /// - Throws: `NodeError` (`.rejected`, `.memberUnavailable`) or the connection's error.
    func dial(_ address: SocketAddress, role: ConnectionRole, timeout: Duration) async throws -> Link {
        let connection = try await TCPConnection.connect(
            on: loop, to: address, maxFrameSize: configuration.maxFrameSize, timeout: timeout)
        guard state == .running || state == .starting else {
            connection.close()
            throw NodeError(.shutDown, "node \(name) stopped while connecting to \(address)")
        }
        let link = adopt(connection, dialled: true)
        send(.hello(Hello(role: role, cluster: configuration.cluster, node: selfInfo)), on: link)
        let answer = try await awaitFrame(on: link, timeout: timeout, doing: "handshake with \(address)")
        switch answer {
        case .helloAck(let remote):
            link.remote = remote
            link.phase = role == .member ? .member : .client
            handshakeCompleted(link)
            if role == .member { memberConnected(link) }
            return link
        case .reject(_, let reason):
            link.closingOnPurpose = true
            link.connection.close()
            throw NodeError(.rejected, "\(address) refused the handshake: \(reason)")
        default:
            protocolViolation(on: link, "expected HELLO_ACK or REJECT during the handshake")
            throw NodeError(.rejected, "\(address) broke the handshake")
        }
    }

    /// Waits for the next frame that a dialler waits for (HELLO_ACK, REJECT, MEMBER_LIST) on `link`;
    /// closes the link when `timeout` passes first.
    func awaitFrame(on link: Link, timeout: Duration, doing what: String) async throws -> WireMessage {
        precondition(link.waiter == nil, "two waiters on one link")
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<WireMessage, any Error>) in
            guard link.connection.isOpen else {
                continuation.resume(throwing: NodeError(.memberUnavailable, "connection lost during \(what)"))
                return
            }
            link.waiter = continuation
            link.deadline = loop.schedule(after: timeout) { [unowned self] in
                self.assumeIsolated { node in
                    link.deadline = nil
                    link.resumeWaiter(.failure(NodeError(.memberUnavailable, "\(what) timed out after \(timeout)")))
                    link.closingOnPurpose = true
                    link.connection.close()
                }
            }
        }
    }

    /// Encodes `message` and queues it on `link`.
    func send(_ message: WireMessage, on link: Link) {
        writer.reset()
        message.encode(into: &writer)
        link.connection.write(frame: writer.bytes)
    }

    /// Closes `link` because its peer broke the protocol; counted and logged, nothing else affected.
    func protocolViolation(on link: Link, _ what: String) {
        statistics.framesRejected += 1
        let peer = link.remote.map { "\($0.name) (\($0.id.short))" } ?? "\(link.connection.remoteAddress?.description ?? "?")"
        logger.warning("closing connection from \(peer): \(what)")
        link.closingOnPurpose = link.phase != .member
        link.connection.close()
    }

    /// Every whole frame of one read, in order.
    func received(_ batch: FrameBatch, on link: Link) {
        var delivery = DeliveryBatch(bufferSize: batch.storage.count)
        for frame in batch {
            guard link.connection.isOpen else { break }
            let message: WireMessage
            do {
                message = try WireMessage.decode(frame, names: &link.names)
            } catch {
                protocolViolation(on: link, error.message)
                break
            }
            handle(message, on: link, delivery: &delivery)
        }
        finishDelivery(delivery)
        if link.phase != .handshaking { updateThrottle(link) }
    }

    private func handle(_ message: WireMessage, on link: Link, delivery: inout DeliveryBatch) {
        switch (link.phase, message) {
        case (.member, .event(let origin, _, _, _)) where origin != link.remote?.id,
            (.member, .message(let origin, _, _)) where origin != link.remote?.id,
            (.member, .request(let origin, _, _, _)) where origin != link.remote?.id:
            // Events travel from their origin directly: another origin is a forgery.
            protocolViolation(on: link, "\(message.typeName) claims origin \(origin.short), not the sender")
        case (.member, .event(let origin, let sequence, let name, let payload)):
            receivedBroadcast(origin: origin, sequence: sequence, name: name, payload: payload, on: link, delivery: &delivery)
        case (.member, .message(let origin, let name, let payload)):
            deliver(Event(name: name, origin: origin, kind: .direct, payload: payload), delivery: &delivery)
        case (.member, .request(let origin, let requestID, let name, let payload)):
            receivedRequest(Event(name: name, origin: origin, kind: .request(id: requestID), payload: payload), from: link,
                            delivery: &delivery)
        case (.member, .reply(let requestID, let status, let payload)):
            receivedReply(requestID: requestID, status: status, payload: payload, from: link.remote?.id)
        case (.member, .joinRequest):
            receivedJoinRequest(on: link)
        case (.member, .memberJoined(let info)):
            receivedMemberJoined(info)
        case (.member, .leave(let leaver)):
            receivedLeave(leaver, on: link)
        case (.member, .memberList(let list)), (.client, .memberList(let list)):
            if link.waiter != nil {
                link.resumeWaiter(.success(.memberList(list)))
            } else {
                protocolViolation(on: link, "unexpected MEMBER_LIST")
            }
        case (.handshaking, .hello(let hello)) where !link.dialled:
            receivedHello(hello, on: link)
        case (.handshaking, .helloAck), (.handshaking, .reject):
            if link.dialled && link.waiter != nil {
                link.resumeWaiter(.success(message))
            } else {
                protocolViolation(on: link, "unexpected handshake answer")
            }
        case (.client, .membersQuery):
            send(.memberList(members.map { NodeInfo(id: $0.id, incarnation: 0, name: $0.name, address: $0.address) }), on: link)
        case (.client, .clientEmit(let requestID, let name, let payload)):
            receivedClientEmit(requestID: requestID, name: name, payload: payload, on: link)
        default:
            protocolViolation(on: link, "frame \(message.typeName) is not allowed on a \(link.phase) connection")
        }
    }

    private func receivedHello(_ hello: Hello, on link: Link) {
        func reject(_ code: RejectCode, _ reason: String) {
            statistics.handshakesRejected += 1
            logger.notice("refused a connection from \(hello.node.name) (\(hello.node.id.short)): \(reason)")
            send(.reject(code: code.rawValue, reason: reason), on: link)
            link.closingOnPurpose = true
            link.connection.closeWhenFlushed()
        }
        guard hello.version == WireProtocol.version else {
            return reject(.versionMismatch, "protocol version \(hello.version) is not \(WireProtocol.version)")
        }
        guard hello.cluster == configuration.cluster else {
            return reject(.clusterMismatch, "cluster '\(hello.cluster)' is not '\(configuration.cluster)'")
        }
        guard state == .running || state == .starting else {
            return reject(.shuttingDown, "node \(name) is shutting down")
        }
        switch hello.role {
        case .member:
            guard hello.node.id != id else { return reject(.duplicateID, "a node cannot join itself") }
            guard SocketAddressText.isValid(hello.node.address) else {
                return reject(.protocolError, "advertised address '\(hello.node.address)' is not HOST:PORT")
            }
            link.remote = hello.node
            link.phase = .member
            handshakeCompleted(link)
            send(.helloAck(selfInfo), on: link)
            memberConnected(link)
        case .client:
            link.remote = hello.node
            link.phase = .client
            handshakeCompleted(link)
            send(.helloAck(selfInfo), on: link)
        }
    }

    /// A link closed, for any reason.
    func closed(_ link: Link, reason: TCPConnection.CloseReason) {
        links.removeValue(forKey: link.id)
        link.resumeWaiter(.failure(NodeError(.memberUnavailable, "connection lost: \(reason)")))
        link.deadline?.close()
        link.deadline = nil
        if case .frameTooLarge = reason {
            statistics.framesRejected += 1
            logger.warning("closed a connection: \(reason)")
        }
        if links.isEmpty && state == .stopping {
            let waiters = stopWaiters
            stopWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        guard link.phase == .member, let remote = link.remote, memberLinks[remote.id] === link else { return }
        memberLinks.removeValue(forKey: remote.id)
        lastSequence[remote.id] = link.lastSequence
        if !link.closingOnPurpose && isActive {
            memberLost(remote)
        }
    }
}

/// Checks `HOST:PORT` text without keeping the parsed address.
enum SocketAddressText {
    static func isValid(_ text: String) -> Bool {
        (try? SocketAddress(parsing: text)) != nil
    }
}

extension WireMessage {
    /// The frame type's name, for logs.
    var typeName: String {
        switch self {
        case .hello: "HELLO"
        case .helloAck: "HELLO_ACK"
        case .reject: "REJECT"
        case .joinRequest: "JOIN_REQUEST"
        case .memberList: "MEMBER_LIST"
        case .memberJoined: "MEMBER_JOINED"
        case .leave: "LEAVE"
        case .event: "EVENT"
        case .message: "MESSAGE"
        case .request: "REQUEST"
        case .reply: "REPLY"
        case .clientEmit: "CLIENT_EMIT"
        case .membersQuery: "MEMBERS_QUERY"
        }
    }
}

import DevtsRuntime
import Logging

/// A request waiting for its reply.
struct PendingRequest {
    let continuation: CheckedContinuation<[UInt8], any Error>
    let target: NodeID
    let name: String
    let timer: LoopTimer
}

extension Node {
    /// Sends a request to one member and waits for its reply.
    ///
    /// The target answers from a responder (`respond(to:_:)`), or with `reply(to:with:)` from a handler
    /// or stream registered for that name; a target with neither answers `.noHandler` at once. A
    /// request to this node's own id is handled locally.
    ///
    /// - Parameters:
    ///   - target: the member's id.
    ///   - name: the request's name.
    ///   - payload: its payload.
    ///   - timeout: how long to wait; the configuration's `requestTimeout` when nil.
    /// - Returns: the reply's payload.
    /// - Throws: `NodeError` `.unknownMember`, `.memberUnavailable` (it left or failed meanwhile),
    ///   `.requestTimedOut`, `.noHandler`, `.handlerFailed`, `.tooLarge`, `.shutDown`.
    public func request(
        _ target: NodeID, _ name: String, _ payload: some Collection<UInt8> & Sendable, timeout: Duration? = nil
    ) async throws -> [UInt8] {
        try checkRunning()
        try checkSendable(name: name, payloadCount: payload.count)
        if target != id, let congested = memberLinks[target], congested.connection.isOverHighWaterMark {
            // Backpressure, as for `send(to:)`.
            try? await congested.connection.waitUntilWritable()
            try checkRunning()
        }
        // Looked up after any wait: the member may have gone meanwhile.
        let link = target == id ? nil : try memberLink(target)
        nextRequestID += 1
        let requestID = nextRequestID
        let timeout = timeout ?? configuration.requestTimeout
        return try await withCheckedThrowingContinuation { continuation in
            let timer = loop.schedule(after: timeout) { [unowned self] in
                self.assumeIsolated { node in
                    node.complete(requestID, .failure(NodeError(
                        .requestTimedOut, "request '\(name)' to \(target.short) got no reply within \(timeout)")))
                }
            }
            pendingRequests[requestID] = PendingRequest(continuation: continuation, target: target, name: name, timer: timer)
            statistics.messagesSent += 1
            if let link {
                send(.request(origin: id, requestID: requestID, name: name, payload: ArraySlice(payload)), on: link)
            } else {
                var delivery = DeliveryBatch()
                receivedRequest(Event(name: name, origin: id, kind: .request(id: requestID), payload: ArraySlice(payload)),
                                from: nil, delivery: &delivery)
                finishDelivery(delivery)
            }
        }
    }

    /// Sends a typed request and decodes a typed reply.
    public func request<Request: TypedEvent, Reply: Decodable>(
        _ target: NodeID, _ request: Request, replyType: Reply.Type, timeout: Duration? = nil
    ) async throws -> Reply {
        let bytes = try await self.request(target, Request.eventName, try BinaryEncoder().encode(request), timeout: timeout)
        return try BinaryDecoder().decode(Reply.self, from: bytes)
    }

    /// Answers requests named `name` with `handler`'s result; a thrown error goes back to the requester
    /// as `.handlerFailed` with its description. The handler runs in a task of its own, so it may await.
    public func respond(to name: String, _ handler: @escaping @Sendable (Event) async throws -> [UInt8]) {
        responders[name] = handler
    }

    /// Replies to a request received through a handler or an event stream.
    ///
    /// - Throws: `NodeError` `.invalidConfiguration` when `event` is not a request, `.memberUnavailable`
    ///   when the requester is gone, `.tooLarge`.
    public func reply(to event: Event, with payload: some Collection<UInt8> & Sendable) throws {
        guard case .request(let requestID) = event.kind else {
            throw NodeError(.invalidConfiguration, "event '\(event.name)' is not a request: there is nobody to reply to")
        }
        try checkSendable(name: "reply", payloadCount: payload.count)
        try sendReply(requestID: requestID, status: .ok, payload: ArraySlice(payload), to: event.origin)
    }

    /// Answers a request received through a handler or an event stream with an error: the requester's
    /// `request` throws `NodeError` `.handlerFailed` with `message`.
    ///
    /// - Throws: as `reply(to:with:)`.
    public func reply(to event: Event, failure message: String) throws {
        guard case .request(let requestID) = event.kind else {
            throw NodeError(.invalidConfiguration, "event '\(event.name)' is not a request: there is nobody to reply to")
        }
        try checkSendable(name: "reply", payloadCount: message.utf8.count)
        try sendReply(requestID: requestID, status: .handlerFailed, payload: ArraySlice(message.utf8), to: event.origin)
    }

    private func sendReply(requestID: UInt64, status: ReplyStatus, payload: ArraySlice<UInt8>, to origin: NodeID) throws {
        if origin == id {
            receivedReply(requestID: requestID, status: status.rawValue, payload: payload, from: id)
            return
        }
        let link = try memberLink(origin)
        send(.reply(requestID: requestID, status: status.rawValue, payload: payload), on: link)
    }

    func receivedRequest(_ event: Event, from link: Link?, delivery: inout DeliveryBatch) {
        guard case .request(let requestID) = event.kind else { return }
        if let responder = responders[event.name] {
            statistics.eventsReceived += 1
            link?.pendingResponders += 1
            Task {
                var status: ReplyStatus
                var payload: [UInt8]
                do {
                    payload = try await responder(event)
                    status = .ok
                } catch {
                    payload = Array("\(error)".utf8)
                    status = .handlerFailed
                }
                if Self.eventFrameOverhead + payload.count > configuration.maxFrameSize {
                    payload = Array("the reply of \(payload.count) bytes exceeds the frame limit of \(configuration.maxFrameSize)".utf8)
                    status = .handlerFailed
                }
                await replyWhenWritable(requestID: requestID, status: status, payload: ArraySlice(payload), to: event.origin, on: link)
            }
        } else if hasNamedListener(for: event.name) {
            deliver(event, delivery: &delivery)
        } else {
            let message = ArraySlice("no handler for '\(event.name)' on \(name)".utf8)
            if let link, link.connection.isOverHighWaterMark {
                // The requester is not reading its answers: this one waits its turn like a responder's.
                link.pendingResponders += 1
                Task { await replyWhenWritable(requestID: requestID, status: .noHandler, payload: message, to: event.origin, on: link) }
            } else {
                try? sendReply(requestID: requestID, status: .noHandler, payload: message, to: event.origin)
            }
        }
    }

    /// Sends a reply once the requester's queue is below its high-water mark (so that a member that
    /// does not read its answers holds at most `maxPendingResponders` of them here), then counts the
    /// request answered.
    private func replyWhenWritable(
        requestID: UInt64, status: ReplyStatus, payload: ArraySlice<UInt8>, to origin: NodeID, on link: Link?
    ) async {
        if let link, link.connection.isOverHighWaterMark { try? await link.connection.waitUntilWritable() }
        try? sendReply(requestID: requestID, status: status, payload: payload, to: origin)
        if let link {
            link.pendingResponders -= 1
            updateThrottle(link)
        }
    }

    /// A reply from `sender` (this node itself for a request it sent to itself).
    func receivedReply(requestID: UInt64, status: UInt8, payload: ArraySlice<UInt8>, from sender: NodeID?) {
        // A late reply after a timeout is dropped; so is one from another node than the one asked.
        guard let pending = pendingRequests[requestID], pending.target == sender else { return }
        let message = String(decoding: payload, as: UTF8.self)
        switch ReplyStatus(rawValue: status) {
        case .ok: complete(requestID, .success(Array(payload)))
        case .noHandler: complete(requestID, .failure(NodeError(.noHandler, message)))
        case .handlerFailed: complete(requestID, .failure(NodeError(.handlerFailed, "request '\(pending.name)' failed: \(message)")))
        case nil: complete(requestID, .failure(NodeError(.handlerFailed, "reply with unknown status \(status)")))
        }
    }

    func complete(_ requestID: UInt64, _ result: Result<[UInt8], any Error>) {
        guard let pending = pendingRequests.removeValue(forKey: requestID) else { return }
        pending.timer.close()
        pending.continuation.resume(with: result)
    }

    func failRequests(to target: NodeID, _ error: NodeError) {
        for (requestID, pending) in pendingRequests where pending.target == target {
            complete(requestID, .failure(error))
        }
    }

    func failAllRequests(_ error: NodeError) {
        for requestID in Array(pendingRequests.keys) { complete(requestID, .failure(error)) }
    }
}

import DevtsRuntime
import Logging

/// Events of one read, gathered for the batch streams.
struct DeliveryBatch {
    var events: [Event] = []
    /// The size of the read the events are slices of (0 for events made here).
    var bufferSize = 0
}

/// What listens for events of one name.
struct Listeners {
    var handlers: [@Sendable (Event) -> Void] = []
    var streams: [UInt64: Subscription<Event>] = [:]
    var isEmpty: Bool { handlers.isEmpty && streams.isEmpty }
}

extension Node {
    /// Overhead of an EVENT frame besides its name and payload: type, origin, sequence, lengths.
    static let eventFrameOverhead = 1 + 16 + 8 + 2 + 4

    func checkSendable(name: String, payloadCount: Int) throws(NodeError) {
        guard !name.isEmpty, name.utf8.count <= Int(UInt16.max) else {
            throw NodeError(.tooLarge, "an event name must be 1 to 65535 bytes of UTF-8")
        }
        guard Self.eventFrameOverhead + name.utf8.count + payloadCount <= configuration.maxFrameSize else {
            throw NodeError(
                .tooLarge, "event '\(name)' with \(payloadCount) bytes exceeds the frame limit of \(configuration.maxFrameSize)")
        }
    }

    // MARK: Sending

    /// Sends an event to every member, this node included unless `includeSelf` is false.
    ///
    /// Each member receives it once, after every broadcast this node sent before it. Waits while a
    /// member's connection has more than its high-water mark queued (backpressure). The copy delivered
    /// to this node's own streams never waits, so a task may broadcast and then read its own events.
    ///
    /// - Throws: `NodeError` `.tooLarge` for an empty or oversized name or payload, `.shutDown` when
    ///   the node is not running.
    public func broadcast(_ name: String, _ payload: some Collection<UInt8> & Sendable, includeSelf: Bool = true) async throws {
        try checkRunning()
        try checkSendable(name: name, payloadCount: payload.count)
        writeBroadcast(name, payload, includeSelf: includeSelf)
        await waitForWritableLinks()
    }

    /// Sends many events, in order, with one hop into the node: cheaper than one call per event.
    ///
    /// - Throws: as `broadcast(_:_:includeSelf:)`; nothing is sent when any payload is too large.
    public func broadcast(_ name: String, payloads: [[UInt8]], includeSelf: Bool = true) async throws {
        try checkRunning()
        for payload in payloads { try checkSendable(name: name, payloadCount: payload.count) }
        for payload in payloads {
            if writeBroadcast(name, payload, includeSelf: includeSelf) {
                await waitForWritableLinks()
                try checkRunning()
            }
        }
        await waitForWritableLinks()
    }

    /// Broadcasts a typed event, encoded with `BinaryEncoder`, named `T.eventName`.
    ///
    /// - Throws: `BinaryCodingError` when the value cannot be encoded; otherwise as `broadcast(_:_:includeSelf:)`.
    public func broadcast<T: TypedEvent>(_ event: T, includeSelf: Bool = true) async throws {
        try await broadcast(T.eventName, try BinaryEncoder().encode(event), includeSelf: includeSelf)
    }

    /// Sends an event to one member only (to this node itself when `target` is its id).
    ///
    /// - Throws: `NodeError` `.unknownMember` when no connected member has that id, `.tooLarge`,
    ///   `.shutDown`.
    public func send(to target: NodeID, _ name: String, _ payload: some Collection<UInt8> & Sendable) async throws {
        try checkRunning()
        try checkSendable(name: name, payloadCount: payload.count)
        if target == id {
            var delivery = DeliveryBatch()
            deliver(Event(name: name, origin: id, kind: .direct, payload: ArraySlice(payload)), delivery: &delivery)
            finishDelivery(delivery)
            return
        }
        let link = try memberLink(target)
        send(.message(origin: id, name: name, payload: ArraySlice(payload)), on: link)
        statistics.messagesSent += 1
        if link.connection.isOverHighWaterMark { try? await link.connection.waitUntilWritable() }
    }

    /// Sends a typed event to one member.
    public func send<T: TypedEvent>(to target: NodeID, _ event: T) async throws {
        try await send(to: target, T.eventName, try BinaryEncoder().encode(event))
    }

    /// The link of the connected member `target`.
    func memberLink(_ target: NodeID) throws(NodeError) -> Link {
        if let link = memberLinks[target] { return link }
        if let member = view[target] {
            throw NodeError(.memberUnavailable, "member \(member.name) (\(target.short)) is \(member.status)")
        }
        throw NodeError(.unknownMember, "no member has id \(target)")
    }

    /// Queues one broadcast on every member link and delivers it here when `includeSelf`.
    ///
    /// - Returns: whether a member link is now over its high-water mark (the caller should wait).
    @discardableResult
    private func writeBroadcast(_ name: String, _ payload: some Collection<UInt8>, includeSelf: Bool) -> Bool {
        var overHighWaterMark = false
        broadcastSequence += 1
        statistics.eventsBroadcast += 1
        if !memberLinks.isEmpty {
            // Encode once; every member's connection copies the same bytes into its batch.
            writer.reset()
            writer.u8(FrameType.event.rawValue)
            writer.nodeID(id)
            writer.u64(broadcastSequence)
            writer.string(name)
            writer.byteField(payload)
            writer.bytes.withUnsafeBytes { frame in
                for link in memberLinks.values {
                    link.connection.write(frame: frame)
                    overHighWaterMark = overHighWaterMark || link.connection.isOverHighWaterMark
                }
            }
        }
        if includeSelf {
            var delivery = DeliveryBatch()
            deliver(Event(name: name, origin: id, kind: .broadcast(sequence: broadcastSequence), payload: ArraySlice(payload)),
                    delivery: &delivery)
            finishDelivery(delivery)
        }
        return overHighWaterMark
    }

    private func waitForWritableLinks() async {
        for link in memberLinks.values where link.connection.isOverHighWaterMark {
            // A link that closes meanwhile ends the wait; its member is handled by the close path.
            try? await link.connection.waitUntilWritable()
        }
    }

    // MARK: Receiving

    /// Calls `handler` on the loop thread for every event named `name`, in order of arrival.
    ///
    /// Handlers must be quick and must not block; use `events(named:)` for work that awaits.
    public func on(_ name: String, _ handler: @escaping @Sendable (Event) -> Void) {
        listeners[name, default: Listeners()].handlers.append(handler)
    }

    /// Whether a handler or stream on this node asked for events named `name` by that name. Streams
    /// of every event do not count: they watch, and are not expected to answer requests.
    func hasNamedListener(for name: String) -> Bool {
        listeners[name] != nil
            || batchStreams.values.contains { $0.names?.contains(name) ?? false }
    }

    func receivedBroadcast(
        origin: NodeID, sequence: UInt64, name: String, payload: ArraySlice<UInt8>, on link: Link,
        delivery: inout DeliveryBatch
    ) {
        // FIFO per origin over one connection; the sequence check drops anything seen already.
        // Broadcasts come from their origin directly (checked before), so its last sequence lives on
        // the link.
        guard sequence > link.lastSequence else {
            statistics.duplicatesDropped += 1
            return
        }
        link.lastSequence = sequence
        deliver(Event(name: name, origin: origin, kind: .broadcast(sequence: sequence), payload: payload), delivery: &delivery)
    }

    /// Hands `event` to the handlers and per-event streams now, and keeps it for the batch streams.
    func deliver(_ event: Event, delivery: inout DeliveryBatch) {
        statistics.eventsReceived += 1
        let named = listeners[event.name]
        if let named {
            for handler in named.handlers { handler(event) }
        }
        let hasStreams = !(named?.streams.isEmpty ?? true) || !allEventStreams.isEmpty || !batchStreams.isEmpty
        guard hasStreams else { return }
        // Streams keep events for a while: do not let a small payload keep a large read alive.
        let kept = event.compacted(bufferSize: delivery.bufferSize)
        if let named {
            for subscription in named.streams.values { feed(subscription, kept) }
        }
        for subscription in allEventStreams.values { feed(subscription, kept) }
        if !batchStreams.isEmpty { delivery.events.append(kept) }
    }

    func finishDelivery(_ delivery: DeliveryBatch) {
        guard !delivery.events.isEmpty else { return }
        for (names, subscription) in batchStreams.values {
            if let names {
                let selected = delivery.events.filter { names.contains($0.name) }
                if !selected.isEmpty { feed(subscription, selected) }
            } else {
                feed(subscription, delivery.events)
            }
        }
    }

    /// A tool asked this node to broadcast an event for it.
    func receivedClientEmit(requestID: UInt64, name: String, payload: ArraySlice<UInt8>, on link: Link) {
        do {
            try checkRunning()
            try checkSendable(name: name, payloadCount: payload.count)
            writeBroadcast(name, payload, includeSelf: true)
            send(.reply(requestID: requestID, status: ReplyStatus.ok.rawValue, payload: []), on: link)
        } catch {
            send(.reply(requestID: requestID, status: ReplyStatus.handlerFailed.rawValue,
                        payload: ArraySlice(error.description.utf8)), on: link)
        }
    }
}

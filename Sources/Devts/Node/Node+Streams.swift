import DevtsRuntime
import Logging

/// A stream's continuation with the gauge that counts what its consumer has not taken yet.
struct Subscription<Element: Sendable> {
    let continuation: AsyncStream<Element>.Continuation
    let gauge: StreamGauge
}

extension Node {
    /// Events named `name` (or every event, for `nil`) from now on, one element per event.
    ///
    /// When the consumer falls `streamBufferLimit` events behind, the node stops reading from its
    /// members until the consumer has caught up halfway: senders then wait (backpressure); nothing is
    /// dropped. The sequence ends when the node stops.
    public func events(named name: String? = nil) -> EventStream<Event> {
        let (stream, subscription, streamID) = subscribe(Event.self, limit: configuration.streamBufferLimit)
        if state == .running || state == .starting {
            if let name {
                listeners[name, default: Listeners()].streams[streamID] = subscription
            } else {
                allEventStreams[streamID] = subscription
            }
            subscription.continuation.onTermination = { [weak self] _ in
                Task { await self?.removeEventStream(name: name, streamID) }
            }
        }
        return stream
    }

    /// Events of type `T` from now on; payloads that do not decode as `T` are logged and skipped.
    public func events<T: TypedEvent>(of type: T.Type) -> AsyncCompactMapSequence<EventStream<Event>, T> {
        let logger = self.logger
        return events(named: T.eventName).compactMap { event in
            do {
                return try event.decode(T.self)
            } catch {
                logger.warning("dropped a '\(T.eventName)' event from \(event.origin.short): \(error)")
                return nil
            }
        }
    }

    /// Events in batches: one element per read from the network (or per local emit), holding every
    /// event of that read whose name is in `names` (all events for `nil`). The cheapest way to
    /// consume a high rate of events. Bounded like `events(named:)`, counting batches.
    public func eventBatches(named names: Set<String>? = nil) -> EventStream<[Event]> {
        let limit = max(2, configuration.streamBufferLimit / 64)
        let (stream, subscription, streamID) = subscribe([Event].self, limit: limit)
        if state == .running || state == .starting {
            batchStreams[streamID] = (names, subscription)
            subscription.continuation.onTermination = { [weak self] _ in
                Task { await self?.removeBatchStream(streamID) }
            }
        }
        return stream
    }

    /// A new stream; finished at once when the node is not running.
    private func subscribe<Element: Sendable>(
        _ type: Element.Type, limit: Int
    ) -> (EventStream<Element>, Subscription<Element>, UInt64) {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self)
        let gauge = StreamGauge(limit: limit) { [weak self] in
            Task { await self?.resumeInboundIfDrained() }
        }
        if !(state == .running || state == .starting) { continuation.finish() }
        nextStreamID += 1
        return (EventStream(base: stream, gauge: gauge), Subscription(continuation: continuation, gauge: gauge), nextStreamID)
    }

    private func removeEventStream(name: String?, _ streamID: UInt64) {
        if let name {
            listeners[name]?.streams.removeValue(forKey: streamID)
            if listeners[name]?.isEmpty == true { listeners.removeValue(forKey: name) }
        } else {
            allEventStreams.removeValue(forKey: streamID)
        }
        resumeInboundIfDrained()
    }

    private func removeBatchStream(_ streamID: UInt64) {
        batchStreams.removeValue(forKey: streamID)
        resumeInboundIfDrained()
    }

    /// Yields `element` to a stream, and stops reading from members when the stream is full.
    func feed<Element>(_ subscription: Subscription<Element>, _ element: Element) {
        subscription.continuation.yield(element)
        if subscription.gauge.produced() && !inboundPaused {
            inboundPaused = true
            statistics.inboundPauses += 1
            logger.debug("a stream's consumer is \(subscription.gauge.limit) elements behind: pausing reads from members")
            for link in memberLinks.values { applyReadState(link) }
        }
    }

    /// Reads from members again once no stream is full.
    func resumeInboundIfDrained() {
        guard inboundPaused else { return }
        let full = listeners.values.contains { $0.streams.values.contains { $0.gauge.isFull } }
            || allEventStreams.values.contains { $0.gauge.isFull }
            || batchStreams.values.contains { $0.subscription.gauge.isFull }
        guard !full else { return }
        inboundPaused = false
        for link in memberLinks.values { applyReadState(link) }
    }

    func finishEventStreams() {
        // Handlers stay registered; only the streams end.
        for name in Array(listeners.keys) {
            for subscription in listeners[name]!.streams.values { subscription.continuation.finish() }
            listeners[name]?.streams = [:]
        }
        for subscription in allEventStreams.values { subscription.continuation.finish() }
        allEventStreams = [:]
        for (_, subscription) in batchStreams.values { subscription.continuation.finish() }
        batchStreams = [:]
        inboundPaused = false
    }
}

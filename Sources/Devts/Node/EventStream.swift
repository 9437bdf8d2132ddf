import Synchronization

/// An asynchronous sequence of what a node delivers (events, or batches of events), with bounded
/// buffering: when its consumer falls more than `NodeConfiguration.streamBufferLimit` elements
/// behind, the node stops reading from its members until the consumer catches up. TCP's flow control
/// then makes the senders wait, so memory stays bounded and nothing is dropped.
///
/// Iterate it from one task. It ends when the node stops; breaking out of the loop (or cancelling
/// the task) unsubscribes.
public struct EventStream<Element: Sendable>: AsyncSequence, Sendable {
    let base: AsyncStream<Element>
    let gauge: StreamGauge

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), gauge: gauge)
    }

    /// Takes elements from the stream, one at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<Element>.AsyncIterator
        let gauge: StreamGauge

        public mutating func next() async -> Element? {
            guard let element = await base.next() else { return nil }
            gauge.consumed()
            return element
        }
    }
}

/// Counts the elements a stream holds that its consumer has not taken yet.
final class StreamGauge: Sendable {
    private let buffered = Atomic<Int>(0)
    /// At this many buffered elements the node pauses reading.
    let limit: Int
    /// Called (from the consumer's task) when the buffer drains to half the limit.
    private let onDrained: @Sendable () -> Void

    init(limit: Int, onDrained: @escaping @Sendable () -> Void) {
        self.limit = limit
        self.onDrained = onDrained
    }

    /// Counts one element in; returns whether the stream is now at its limit.
    func produced() -> Bool {
        buffered.add(1, ordering: .relaxed).newValue >= limit
    }

    /// Counts one element out; tells the node when the buffer has drained to half the limit.
    func consumed() {
        if buffered.subtract(1, ordering: .relaxed).newValue == limit / 2 { onDrained() }
    }

    /// Whether the stream is at its limit.
    var isFull: Bool { buffered.load(ordering: .relaxed) >= limit }
}

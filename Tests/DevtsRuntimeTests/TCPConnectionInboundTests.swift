import DevtsRuntime
import Testing

/// `inbound()`: the frames as an AsyncSequence of batches.
@Suite struct TCPConnectionInboundTests {
    /// Listens; each accepted connection's `inbound()` stream is handed to the test.
    private func listen(on loop: EventLoop, maxFrameSize: Int = 1 << 20)
        async throws -> (TCPListener, SocketAddress, LoopBound<[AsyncThrowingStream<FrameBatch, any Error>]>)
    {
        let streams = LoopBound([AsyncThrowingStream<FrameBatch, any Error>](), on: loop)
        let listener = try await TCPListener.listen(on: loop, address: .loopbackAnyPort, maxFrameSize: maxFrameSize) {
            streams.value.append($0.inbound())
        }
        return (listener, try await loop.perform { listener.address }, streams)
    }

    @Test func inboundDeliversBatchesAndFinishesWhenThePeerCloses() async throws {
        try await withLoop("inbound") { loop in
            let (listener, address, streams) = try await listen(on: loop)
            let client = try await TCPConnection.connect(on: loop, to: address)
            try await waitUntil("the server accepted") { try await streams.read().count == 1 }
            let stream = try #require(try await streams.read().first)

            let received = Locked([[UInt8]]())
            let batches = Locked(0)
            let consumer = Task {
                for try await batch in stream {
                    batches.withLock { $0 += 1 }
                    received.withLock { $0 += batch.map { Array($0) } }
                }
            }
            // Three passes, each waiting for the last to arrive, so there are at least three batches.
            let rounds: [[[UInt8]]] = [[[1], [2, 2]], [[]], [[3, 3, 3], [4, 4, 4, 4], [5]]]
            var expected: [[UInt8]] = []
            for frames in rounds {
                try await loop.perform { for frame in frames { client.write(frame: frame) } }
                expected += frames
                try await waitUntil("\(expected.count) frames arrived") { received.value.count == expected.count }
            }
            try await loop.perform { client.close() }
            try await consumer.value("the stream finished")  // without an error, as the peer closed
            #expect(received.value == expected)
            #expect(batches.value >= rounds.count)
            try await loop.perform { listener.close() }
        }
    }

    @Test func inboundThrowsTheCloseReasonOfABadFrame() async throws {
        try await withLoop("inbound-bad") { loop in
            let (listener, address, streams) = try await listen(on: loop, maxFrameSize: 16)
            let client = try await TCPConnection.connect(on: loop, to: address)
            try await waitUntil("the server accepted") { try await streams.read().count == 1 }
            let stream = try #require(try await streams.read().first)
            let consumer = Task { () -> Int in
                var frames = 0
                for try await batch in stream { frames += batch.count }
                return frames
            }
            try await loop.perform {
                client.write(frame: [UInt8](repeating: 1, count: 16))
                client.write(frame: [UInt8](repeating: 2, count: 17))
            }
            await #expect(throws: TCPConnection.CloseReason.frameTooLarge(length: 17, maximum: 16)) {
                try await consumer.value("the stream ended")
            }
            try await loop.perform {
                client.close()
                listener.close()
            }
        }
    }
}

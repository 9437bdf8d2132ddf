@testable import Devts
import DevtsRuntime
import Testing

@Suite("Backpressure")
struct BackpressureTests {
    @Test("a slow stream consumer pauses reading, the sender waits, and nothing is lost")
    func slowConsumerPausesTheSender() async throws {
        let limit = 1_000
        let total = 50_000  // ~52 MB: more than the sender's high-water mark and the kernel's buffers
        let a = try await Node.start(config(name: "a"))
        var slowConfig = config(join: [await a.address], name: "b")
        slowConfig.streamBufferLimit = limit
        let b = try await Node.start(slowConfig)
        #expect(await waitUntil { await a.members.count == 2 })
        let stream = await b.events(named: "flood")

        let sender = Task {
            let payload = [UInt8](repeating: 0xAB, count: 1_024)
            for start in stride(from: 0, to: total, by: 1_000) {
                try await a.broadcast("flood", payloads: (start..<(start + 1_000)).map { bigEndianBytes(UInt64($0)) + payload },
                                      includeSelf: false)
            }
        }

        // The stream fills, and the node stops reading: what it has delivered stays near the limit
        // (at most one more read's worth of frames), far below what the sender wants to send.
        #expect(await waitUntil { await b.statistics.inboundPauses >= 1 })
        let deliveredWhilePaused = await b.statistics.eventsReceived
        let paused = try await b.loop.submit { [b] in
            b.assumeIsolated { node in node.memberLinks.values.allSatisfy { $0.connection.isReadingPaused } }
        }
        #expect(paused)
        #expect(deliveredWhilePaused >= limit)
        #expect(deliveredWhilePaused <= limit + 256)

        // The consumer catches up: every event arrives, once, in order, and the sender finishes.
        var next: UInt64 = 0
        for await event in stream {
            let value = event.payload.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if value != next {
                Issue.record("expected event \(next), got \(value)")
                break
            }
            next += 1
            if next == UInt64(total) { break }
        }
        #expect(next == UInt64(total))
        try await sender.value
        try await shutDownAll([a, b])
    }

    @Test("two members flooding each other while their consumers lag both finish: no mutual pause")
    func mutualFloodDoesNotDeadlock() async throws {
        let total = 60_000  // 60 MB each way: well beyond the high-water marks and kernel buffers
        var slow = config(name: "a")
        slow.streamBufferLimit = 1_000
        let a = try await Node.start(slow)
        slow.name = "b"
        slow.join = [await a.address]
        let b = try await Node.start(slow)
        #expect(await waitUntil { await a.members.count == 2 })
        let payload = [UInt8](repeating: 0x5A, count: 1_024)
        let received = [Collector<Int>(), Collector<Int>()]
        var consumers: [Task<Void, Never>] = []
        for (node, counter) in zip([a, b], received) {
            let stream = await node.events(named: "flood")
            consumers.append(Task {
                var count = 0
                for await _ in stream {
                    count += 1
                    // A slow consumer (not a wait for anything): it falls behind, so reads pause.
                    if count % 200 == 0 {
                        counter.append(count)
                        try? await Task.sleep(for: .milliseconds(10))
                    }
                    if count == total { break }
                }
            })
        }
        // The senders are watched with a deadline: in a deadlock they would never return.
        let sent = Collector<Int>()
        for node in [a, b] {
            Task {
                for _ in 0..<(total / 1_000) {
                    try await node.broadcast("flood", payloads: Array(repeating: payload, count: 1_000), includeSelf: false)
                }
                sent.append(1)
            }
        }
        // Generous deadlines: under ThreadSanitizer, beside the rest of the suite, this is slow.
        #expect(await waitUntil(timeout: .seconds(120)) { sent.count == 2 }, "senders done: \(sent.count) of 2")
        for (index, counter) in received.enumerated() {
            #expect(await waitUntil(timeout: .seconds(60)) { counter.all.last == total }, "node \(index) got \(counter.all.last ?? 0)")
        }
        for consumer in consumers { consumer.cancel() }
        try await shutDownAll([a, b])  // also releases senders stuck in a deadlock
    }
}

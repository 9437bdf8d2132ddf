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
        #expect(await b.statistics.inboundPauses >= 2)  // it paused again each time it filled up
        try await shutDownAll([a, b])
    }
}

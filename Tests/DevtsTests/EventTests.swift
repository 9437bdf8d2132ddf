@testable import Devts
import Testing

@Suite("Event")
struct EventTests {
    @Test("a small payload in a large read is copied out before a stream keeps it; others are not")
    func compaction() {
        let read = [UInt8](repeating: 1, count: 200_000)
        let small = Event(name: "e", origin: .random(), kind: .direct, payload: read[150_000..<150_010])
        let kept = small.compacted(bufferSize: read.count)
        #expect(kept.bytes == small.bytes)
        #expect(kept.payload.startIndex == 0)  // its own array now
        // A large share of the read, or a small read, stays a slice.
        let large = Event(name: "e", origin: .random(), kind: .direct, payload: read[50_000..<150_000])
        #expect(large.compacted(bufferSize: read.count).payload.startIndex == 50_000)
        #expect(small.compacted(bufferSize: 1_000).payload.startIndex == 150_000)
    }

    @Test("text is the payload when it is valid UTF-8, nil otherwise")
    func text() {
        #expect(Event(name: "e", origin: .random(), kind: .direct, payload: ArraySlice("héllo".utf8)).text == "héllo")
        #expect(Event(name: "e", origin: .random(), kind: .direct, payload: [0xC3, 0x28]).text == nil)
    }
}

import DevtsRuntime
import Testing

@Suite struct FrameBatchTests {
    @Test func framesAreStoredWithBigEndianLengthPrefixes() {
        let batch = FrameBatch(frames: [[], [0xAA], [1, 2, 3]])
        #expect(batch.count == 3)
        #expect(batch.storage == [0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0, 0, 0, 3, 1, 2, 3])
        #expect(batch.storage == encodeFrames([[], [0xAA], [1, 2, 3]]))
    }

    @Test func iterationAndForEachFrameYieldTheBodies() {
        var random = SeededRandom.forTest("frame batch")
        var frames = (0..<200).map { _ in random.bytes(Int.random(in: 0...300, using: &random)) }
        frames.append(random.bytes(70_000))
        let batch = FrameBatch(storage: encodeFrames(frames), count: frames.count)
        #expect(batch.map { Array($0) } == frames)
        var visited: [[UInt8]] = []
        batch.forEachFrame { visited.append(Array($0)) }
        #expect(visited == frames)
    }

    @Test func anEmptyBatchYieldsNothing() {
        let batch = FrameBatch(frames: [])
        #expect(batch.count == 0)
        #expect(batch.storage.isEmpty)
        #expect(Array(batch).isEmpty)
    }

    @Test func lengthsReadAndWriteBigEndianAtAnyAlignment() {
        var bytes = [UInt8](repeating: 0, count: 12)
        bytes.withUnsafeMutableBytes { raw in
            for offset in 0..<8 {
                FrameLength.write(0x0102_0304 &+ UInt32(offset), to: raw.baseAddress! + offset)
                #expect(FrameLength.read(raw.baseAddress! + offset) == 0x0102_0304 &+ UInt32(offset))
            }
        }
        #expect(bytes[7..<11] == [1, 2, 3, 0x0B])
        #expect(FrameLength.size == 4)
    }
}

import DevtsRuntime
import Testing

/// Length-prefixed framing over real sockets: frames of every size arrive byte-exact however the
/// stream is split, many frames in one read are all parsed, and a frame over the maximum closes that
/// connection alone.
@Suite struct TCPConnectionFramingTests {
    enum Profile: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Edge sizes from 0 B to 8 MiB, plus random ones, in random order.
        case mixedSizes
        /// Thousands of small frames, split mostly inside headers.
        case smallFrames

        var testDescription: String { rawValue }

        func frames(_ random: inout SeededRandom) -> [[UInt8]] {
            var sizes: [Int]
            switch self {
            case .mixedSizes:
                sizes = [0, 1, 2, 3, 4, 5, 255, 4096, 65535, 65536, 65537, 1 << 20, 8 << 20]
                sizes += (0..<24).map { _ in Int.random(in: 0...200_000, using: &random) }
            case .smallFrames:
                sizes = (0..<2_000).map { _ in Int.random(in: 0...300, using: &random) }
            }
            sizes.shuffle(using: &random)
            return sizes.map { random.bytes($0) }
        }

        /// Sizes of the pieces the stream is written in: a third are 1–7 bytes, so many splits fall
        /// inside a header, the rest up to a profile-dependent size.
        func chunkSizes(total: Int, _ random: inout SeededRandom) -> [Int] {
            let largest = self == .mixedSizes ? 256 * 1024 : 600
            var sizes: [Int] = []
            var remaining = total
            while remaining > 0 {
                let size = Int.random(in: 0..<3, using: &random) == 0
                    ? Int.random(in: 1...7, using: &random) : Int.random(in: 1...largest, using: &random)
                sizes.append(min(size, remaining))
                remaining -= sizes.last!
            }
            return sizes
        }
    }

    @Test(arguments: Profile.allCases)
    func framesRoundTripByteExactHoweverTheStreamIsSplit(_ profile: Profile) async throws {
        var random = SeededRandom.forTest("round trip, \(profile.rawValue)")
        let seed = random.seed
        let frames = profile.frames(&random)
        let stream = encodeFrames(frames)
        let chunks = profile.chunkSizes(total: stream.count, &random)

        try await withLoop("rt-server") { serverLoop in
            try await withLoop("rt-client") { clientLoop in
                let server = TestServer(on: serverLoop, echo: .frames)
                let address = try await server.listen()
                let client = try await connectPeer(on: clientLoop, to: address)

                // Each piece is queued with writeRaw and flushed in a job of its own, so it leaves in
                // its own uv_write on its own loop pass.
                var offset = 0
                for size in chunks {
                    await client.writeRaw(Array(stream[offset..<(offset + size)]))
                    offset += size
                }
                try await waitUntil("all \(frames.count) frames are echoed (seed \(seed))") {
                    await client.frameCount >= frames.count
                }

                let serverPeer = try #require(await server.peers.first)
                let received = await serverPeer.frames
                let echoed = await client.frames
                let mismatch = firstMismatch(frames, received)
                #expect(mismatch == nil,
                        "seed \(seed): frame \(mismatch ?? -1) differs; \(received.count) of \(frames.count) received")
                let echoMismatch = firstMismatch(frames, echoed)
                #expect(echoMismatch == nil, "seed \(seed): echoed frame \(echoMismatch ?? -1) differs")
                #expect(await serverPeer.inconsistentBatches == 0)
                #expect(await client.inconsistentBatches == 0)
                // The splits reached the reader: it saw the frames over several reads.
                #expect(await serverPeer.batchSizes.count > 1)

                await client.close()
                try await waitUntil("the server side saw the close") { await serverPeer.closeReason != nil }
                #expect(await serverPeer.closeReason == .peerClosed)
                #expect(await client.closeReason == .local)
                #expect(await client.closeCalls == 1)
                await server.closeListener()
            }
        }
    }

    @Test func manyFramesInOneReadAreAllParsedAndAPartialFrameWaitsForTheRest() async throws {
        var random = SeededRandom.forTest("coalesced")
        let frames = (0..<500).map { _ in random.bytes(Int.random(in: 0...40, using: &random)) }
        let last = random.bytes(1_000)
        var stream = encodeFrames(frames)
        let lastFrame = encodeFrames([last])
        stream += lastFrame[..<500]  // the header and half the body of one more frame

        try await withLoop("coalesced") { loop in
            let server = TestServer(on: loop, echo: .none)
            let address = try await server.listen()
            let client = try await connectPeer(on: loop, to: address)
            await client.writeRaw(stream)  // one uv_write
            try await waitUntil("the 500 whole frames arrived") {
                await server.peers.first?.frameCount == 500
            }
            let serverPeer = try #require(await server.peers.first)
            // One write of ~14 KiB: the reader took several frames from a single read.
            let batches = await serverPeer.batchSizes
            #expect(batches.max()! > 1, "batches: \(batches)")
            #expect(batches.count < 500)

            await client.writeRaw(Array(lastFrame[500...]))
            try await waitUntil("the split frame arrived") { await serverPeer.frameCount == 501 }
            #expect(firstMismatch(frames + [last], await serverPeer.frames) == nil, "seed \(random.seed)")
            #expect(await serverPeer.inconsistentBatches == 0)

            await client.close()
            try await waitUntil("the server side closed") { await serverPeer.closeReason == .peerClosed }
            await server.closeListener()
        }
    }

    /// A length over the maximum: one more than allowed, and the largest a header can hold.
    @Test(arguments: [1_025, Int(UInt32.max)])
    func aFrameOverTheMaximumClosesOnlyItsConnection(announcedLength: Int) async throws {
        let maximum = 1_024
        try await withLoop("max-server") { serverLoop in
            try await withLoop("max-client") { clientLoop in
                let server = TestServer(on: serverLoop, echo: .frames)
                let address = try await server.listen(maxFrameSize: maximum)
                let good = try await connectPeer(on: clientLoop, to: address)
                let bad = try await connectPeer(on: clientLoop, to: address)
                try await waitUntil("the server accepted both") { await server.peers.count == 2 }
                let goodSide = try #require(await server.peer(from: await good.localAddress))
                let badSide = try #require(await server.peer(from: await bad.localAddress))

                // Before: a frame of exactly the maximum goes through.
                let before = [UInt8](repeating: 1, count: maximum)
                await good.write(before)
                try await waitUntil("the first frame is echoed") { await good.frameCount == 1 }

                // The bad client sends a whole frame, then a header announcing too much, split over
                // two writes: the whole frame is still delivered, then the connection closes.
                await bad.writeRaw(encodeFrames([[7, 7, 7]]) + frameHeader(UInt32(announcedLength))[..<2])
                await bad.writeRaw(Array(frameHeader(UInt32(announcedLength))[2...]))
                try await waitUntil("the server closed the bad connection") { await badSide.closeReason != nil }
                #expect(await badSide.closeReason == .frameTooLarge(length: announcedLength, maximum: maximum))
                #expect(await badSide.frames == [[7, 7, 7]])
                try await waitUntil("the bad client saw its connection end") { await bad.closeReason != nil }
                let badEnd = await bad.closeReason
                #expect(badEnd == .peerClosed || badEnd == .error(.connectionReset), "\(String(describing: badEnd))")

                // After: the good connection still carries frames both ways.
                let after = (0..<3).map { [UInt8](repeating: UInt8($0), count: 100 * $0) }
                for frame in after { await good.write(frame) }
                try await waitUntil("the later frames are echoed") { await good.frameCount == 4 }
                #expect(await good.frames == [before] + after)
                #expect(await good.isOpen)
                #expect(await goodSide.closeReason == nil)

                await good.close()
                try await waitUntil("the good server side closed") { await goodSide.closeReason == .peerClosed }
                await server.closeListener()
            }
        }
    }

    @Test func framesBeforeAnOversizedHeaderInTheSameReadAreDelivered() async throws {
        // What the reader gets must not depend on how TCP split the stream: the frames that came
        // whole before the bad header are delivered, then the connection closes.
        try await withLoop("max-same-read") { loop in
            let server = TestServer(on: loop, echo: .none)
            let address = try await server.listen(maxFrameSize: 64)
            let client = try await connectPeer(on: loop, to: address)
            await client.writeRaw(encodeFrames([[1], [2, 2], []]) + frameHeader(65) + [UInt8](repeating: 9, count: 65))
            try await waitUntil("the server accepted") { await server.peers.count == 1 }
            let serverSide = try #require(await server.peers.first)
            try await waitUntil("the server closed the connection") { await serverSide.closeReason != nil }
            #expect(await serverSide.closeReason == .frameTooLarge(length: 65, maximum: 64))
            #expect(await serverSide.frames == [[1], [2, 2], []])
            try await waitUntil("the client saw the close") { await client.closeReason != nil }
            await server.closeListener()
        }
    }
}

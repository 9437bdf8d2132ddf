import DevtsRuntime
import Testing

/// A listener whose accepted connections are held open and never read: the kernel's buffers fill
/// and stay full, as with a peer that is frozen or hostile.
final class SilentServer: @unchecked Sendable {
    let loop: EventLoop
    private var listener: TCPListener?
    private var held: [TCPConnection] = []

    init(on loop: EventLoop) { self.loop = loop }

    func listen() async throws -> SocketAddress {
        try await loop.perform {
            let listener = try TCPListener(on: self.loop, address: try SocketAddress(host: "127.0.0.1", port: 0)) {
                self.held.append($0)
            }
            self.listener = listener
            return listener.address
        }
    }

    /// Starts reading every held connection, discarding what arrives; `onFrames` sees each batch.
    func startReading(_ onFrames: @escaping @Sendable (FrameBatch) -> Void) async throws {
        try await loop.perform { for c in self.held { c.startReading(onFrames: onFrames, onClose: { _ in }) } }
    }

    var acceptedCount: Int { get async throws { try await loop.perform { self.held.count } } }

    func closeAll() async throws {
        try await loop.perform {
            for c in self.held { c.close() }
            self.listener?.close()
        }
    }
}

@Suite struct TCPConnectionSlowPeerTests {
    /// Before: each loop pass handed libuv a partly filled 64 KiB buffer that a blocked socket kept,
    /// so 16-byte frames to a peer that does not read took 64 KiB of memory each.
    @Test func smallFramesToAPeerThatDoesNotReadUseMemoryCloseToTheirBytes() async throws {
        try await withLoop("slow-small") { loop in
            let server = SilentServer(on: loop)
            let address = try await server.listen()
            let connection = try await TCPConnection.connect(on: loop, to: address)
            try await fillUntilBlocked(connection, on: loop, beyond: 1 << 20)
            // One small frame per loop pass, as a node broadcasting one event per call does.
            for _ in 0..<4_000 {
                try await loop.perform { connection.write(frame: [UInt8](repeating: 7, count: 16)) }
            }
            let (queued, held) = try await loop.perform { (connection.queuedBytes, loop.writeBufferBytes) }
            // Full batches wait here; libuv has at most one more, plus the open batch.
            #expect(held <= queued + 3 * 64 * 1024, "write buffers \(held) B for \(queued) B queued")
            try await loop.perform { connection.close() }
            try await server.closeAll()
            try await waitUntil("buffers returned") { try await loop.perform { loop.writeBufferBytes } == 0 }
        }
    }

    @Test func controlFramesOvertakeDataThatTheKernelHasNotTaken() async throws {
        try await withLoop("slow-control") { loop in
            let server = SilentServer(on: loop)
            let address = try await server.listen()
            let connection = try await TCPConnection.connect(on: loop, to: address)
            try await fillUntilBlocked(connection, on: loop, beyond: 2 << 20)
            try await loop.perform {
                for _ in 0..<64 { connection.write(frame: [UInt8](repeating: 1, count: 60_000)) }
                connection.write(frame: [0xC0, 0x01], lane: .control)
            }
            let order = LoopBound<[Int]>([], on: loop)
            try await server.startReading { batch in
                for frame in batch { order.value.append(frame.count) }
            }
            try await waitUntil("the control frame arrived") { try await order.read().contains(2) }
            let seen = try await order.read()
            let dataBefore = seen.prefix { $0 != 2 }.filter { $0 == 60_000 }.count
            // It may wait behind what the kernel and libuv hold, never behind the 64 frames queued here.
            #expect(dataBefore < 64, "control frame after \(dataBefore) of the 64 queued data frames")
            try await loop.perform { connection.close() }
            try await server.closeAll()
        }
    }

    @Test func writeStallGrowsWhileThePeerDoesNotReadAndIsZeroWhenDrained() async throws {
        try await withLoop("slow-stall") { loop in
            let server = SilentServer(on: loop)
            let address = try await server.listen()
            let connection = try await TCPConnection.connect(on: loop, to: address)
            try await fillUntilBlocked(connection, on: loop, beyond: 1 << 20)
            try await waitUntil("a stall is seen") { try await loop.perform { connection.writeStall } >= .milliseconds(50) }
            try await server.startReading { _ in }
            try await waitUntil("drained") { try await loop.perform { connection.writeStall } == .zero }
            try await loop.perform { connection.close() }
            try await server.closeAll()
        }
    }

    /// Before: the 4-byte header of a 16 MiB frame made the next read reserve 16 MiB.
    @Test func announcingALargeFrameReservesOnlyWhatArrives() async throws {
        try await withLoop("slow-announce") { loop in
            let server = TestServer(on: loop, echo: .none)
            let address = try await server.listen()
            let client = try await TCPConnection.connect(on: loop, to: address)
            let announce = frameHeader(16 << 20) + [1, 2, 3]
            try await loop.perform { announce.withUnsafeBytes { client.writeRaw($0) } }
            try await waitUntil("the server accepted") { await server.peers.count == 1 }
            let serverSide = try #require(await server.peers.first)
            // Give the server a loop pass or two to read the header.
            try await waitUntil("the header was read") { try await loop.perform { serverSide.connection.bufferedReadBytes } == 7 }
            let reserved = try await loop.perform { serverSide.connection.readBufferCapacity }
            #expect(reserved <= 256 * 1024, "reserved \(reserved) B for 7 B received")
            try await loop.perform { client.close() }
            try await waitUntil("closed") { await serverSide.closeReason != nil }
            await server.closeListener()
        }
    }
}

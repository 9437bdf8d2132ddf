/// The whole frames that one read brought in, in arrival order.
///
/// A batch owns one contiguous copy of the frames with their 4-byte length prefixes; iterating it
/// allocates nothing per frame. Frames are `ArraySlice`s sharing the batch's storage.
public struct FrameBatch: Sendable, Sequence {
    /// The frames as they came off the wire: each a 4-byte big-endian length, then that many bytes.
    public let storage: [UInt8]
    /// The number of frames in the batch.
    public let count: Int

    /// Wraps bytes that hold exactly `count` whole length-prefixed frames.
    public init(storage: [UInt8], count: Int) {
        self.storage = storage
        self.count = count
    }

    /// Builds a batch from frame bodies (adds the length prefixes); mostly for tests.
    public init(frames: [[UInt8]]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frames.reduce(0) { $0 + 4 + $1.count })
        for frame in frames {
            let n = UInt32(frame.count)
            bytes.append(contentsOf: [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16),
                                      UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)])
            bytes.append(contentsOf: frame)
        }
        self.init(storage: bytes, count: frames.count)
    }

    public func makeIterator() -> Iterator { Iterator(storage: storage) }

    /// Yields each frame's body (without its length prefix).
    public struct Iterator: IteratorProtocol {
        let storage: [UInt8]
        var offset = 0

        public mutating func next() -> ArraySlice<UInt8>? {
            guard offset + 4 <= storage.count else { return nil }
            let length = storage.withUnsafeBytes { Int(FrameLength.read($0.baseAddress! + offset)) }
            let start = offset + 4
            offset = start + length
            return storage[start..<offset]
        }
    }

    /// Calls `body` with each frame's body as raw bytes, without creating slices.
    public func forEachFrame(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try storage.withUnsafeBytes { raw in
            var offset = 0
            while offset + 4 <= raw.count {
                let length = Int(FrameLength.read(raw.baseAddress! + offset))
                try body(UnsafeRawBufferPointer(rebasing: raw[(offset + 4)..<(offset + 4 + length)]))
                offset += 4 + length
            }
        }
    }
}

/// The 4-byte big-endian length that starts every frame.
public enum FrameLength {
    /// Bytes in the length prefix.
    public static let size = 4

    /// Reads a big-endian UInt32 at `pointer` (any alignment).
    @inline(__always)
    public static func read(_ pointer: UnsafeRawPointer) -> UInt32 {
        UInt32(bigEndian: pointer.loadUnaligned(as: UInt32.self))
    }

    /// Writes `value` big-endian at `pointer` (any alignment).
    @inline(__always)
    public static func write(_ value: UInt32, to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: value.bigEndian, as: UInt32.self)
    }
}

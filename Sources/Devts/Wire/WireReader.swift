/// Reads the wire protocol's fields from one frame, never trusting a length (docs/PROTOCOL.md).
///
/// Every read checks the bytes that remain first and throws `WireError` when they are too few; byte
/// fields come back as slices of the frame, without a copy.
struct WireReader {
    let frame: ArraySlice<UInt8>
    private(set) var index: Int

    init(_ frame: ArraySlice<UInt8>) {
        self.frame = frame
        index = frame.startIndex
    }

    var remaining: Int { frame.endIndex - index }

    private mutating func take(_ count: Int, _ field: StaticString) throws(WireError) -> Int {
        guard count >= 0, remaining >= count else {
            throw WireError.truncated(field: "\(field)", needed: count, remaining: remaining)
        }
        let start = index
        index += count
        return start
    }

    mutating func u8(_ field: StaticString) throws(WireError) -> UInt8 {
        frame[try take(1, field)]
    }

    mutating func u16(_ field: StaticString) throws(WireError) -> UInt16 {
        let start = try take(2, field)
        return UInt16(frame[start]) << 8 | UInt16(frame[start + 1])
    }

    mutating func u32(_ field: StaticString) throws(WireError) -> UInt32 {
        let start = try take(4, field)
        var value: UInt32 = 0
        for i in start..<(start + 4) { value = value << 8 | UInt32(frame[i]) }
        return value
    }

    mutating func u64(_ field: StaticString) throws(WireError) -> UInt64 {
        let start = try take(8, field)
        return frame.withUnsafeBytes { raw in
            UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: start - frame.startIndex, as: UInt64.self))
        }
    }

    mutating func nodeID(_ field: StaticString) throws(WireError) -> NodeID {
        let high = try u64(field)
        let low = try u64(field)
        return NodeID(high: high, low: low)
    }

    /// A u16-length-prefixed UTF-8 string; invalid UTF-8 is an error, not repaired.
    mutating func string(_ field: StaticString) throws(WireError) -> String {
        var cache = NameCache()
        return try string(field, cache: &cache)
    }

    /// A string as `string(_:)` reads it, through `cache` (for event names, which repeat).
    mutating func string(_ field: StaticString, cache: inout NameCache) throws(WireError) -> String {
        let length = Int(try u16(field))
        let start = try take(length, field)
        let offset = start - frame.startIndex
        let text = frame.withUnsafeBytes { raw in
            cache.string(for: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
        }
        guard let text else { throw WireError.invalid(field: "\(field)", reason: "is not valid UTF-8") }
        return text
    }

    /// A u32-length-prefixed byte field, as a slice of the frame.
    mutating func byteField(_ field: StaticString) throws(WireError) -> ArraySlice<UInt8> {
        let length = Int(try u32(field))
        let start = try take(length, field)
        return frame[start..<(start + length)]
    }

    /// Throws unless every byte of the frame was read.
    func expectEnd(_ frameType: FrameType) throws(WireError) {
        if remaining != 0 { throw WireError.trailingBytes(frame: "\(frameType)", count: remaining) }
    }
}

/// A frame that does not follow docs/PROTOCOL.md. The connection it came on is closed; no other
/// peer is affected.
public struct WireError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, in a sentence.
    public let message: String

    static func truncated(field: String, needed: Int, remaining: Int) -> WireError {
        WireError(message: "frame truncated: field '\(field)' needs \(needed) bytes, \(remaining) remain")
    }

    static func invalid(field: String, reason: String) -> WireError {
        WireError(message: "invalid field '\(field)': \(reason)")
    }

    static func trailingBytes(frame: String, count: Int) -> WireError {
        WireError(message: "\(count) unexpected bytes after the end of a \(frame) frame")
    }

    static func unknownType(_ type: UInt8) -> WireError {
        WireError(message: "unknown frame type \(type)")
    }

    public var description: String { message }
}

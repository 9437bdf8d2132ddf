/// Appends the wire protocol's fields, big-endian, to a byte array (docs/PROTOCOL.md).
///
/// Reused across frames: `reset()` keeps the capacity, so steady encoding does not allocate.
struct WireWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func nodeID(_ id: NodeID) {
        u64(id.high)
        u64(id.low)
    }

    /// A string: u16 byte length, then UTF-8. Longer strings are a programming error; callers
    /// validate user input (names) before it gets here.
    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            precondition(utf8.count <= Int(UInt16.max), "string of \(utf8.count) bytes is too long for the wire")
            u16(UInt16(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// A byte field: u32 length, then the bytes.
    mutating func byteField(_ value: some Collection<UInt8>) {
        u32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    /// A byte field from raw memory.
    mutating func byteField(_ value: UnsafeRawBufferPointer) {
        u32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }
}

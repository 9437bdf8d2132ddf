extension BinaryEncoder.State {
    // Primitive writers: append the wire form of one value, as documented on `BinaryEncoder`.

    @inline(__always) func writeByte(_ value: UInt8) { bytes.append(value) }
    func write(_ value: Bool) { bytes.append(value ? 1 : 0) }
    func write(_ value: UInt8) { bytes.append(value) }
    func write(_ value: Int8) { bytes.append(UInt8(bitPattern: value)) }
    func write(_ value: UInt16) { writeVarint(UInt64(value)) }
    func write(_ value: UInt32) { writeVarint(UInt64(value)) }
    func write(_ value: UInt64) { writeVarint(value) }
    func write(_ value: UInt) { writeVarint(UInt64(value)) }
    func write(_ value: Int16) { writeVarint(Self.zigzag(Int64(value))) }
    func write(_ value: Int32) { writeVarint(Self.zigzag(Int64(value))) }
    func write(_ value: Int64) { writeVarint(Self.zigzag(value)) }
    func write(_ value: Int) { writeVarint(Self.zigzag(Int64(value))) }
    func write(_ value: Float) { writeFixed(value.bitPattern) }
    func write(_ value: Double) { writeFixed(value.bitPattern) }

    func write(_ value: UInt128) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    func write(_ value: Int128) {
        write(UInt128(bitPattern: (value << 1) ^ (value >> 127)))
    }

    func write(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    func write(_ value: [UInt8]) {
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    @inline(__always)
    func writeVarint(_ value: UInt64) {
        if value < 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value))
        } else {
            Self.appendVarint(value, to: &bytes)
        }
    }

    private func writeFixed<I: FixedWidthInteger>(_ value: I) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var scratch: (UInt64, UInt64) = (0, 0)
        let count = withUnsafeMutableBytes(of: &scratch) { raw -> Int in
            var value = value
            var index = 0
            while value >= 0x80 {
                raw[index] = UInt8(truncatingIfNeeded: value) | 0x80
                value >>= 7
                index += 1
            }
            raw[index] = UInt8(truncatingIfNeeded: value)
            return index + 1
        }
        withUnsafeBytes(of: &scratch) { raw in
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[..<count]))
        }
    }
}

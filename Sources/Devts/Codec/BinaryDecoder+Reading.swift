extension BinaryDecoder.State {
    // Every read checks the bytes that remain before touching memory; `position` only moves
    // forward past bytes that were checked.

    @inline(__always)
    func readByte() throws(BinaryCodingError) -> UInt8 {
        guard position < bytes.count else { throw Self.truncated("expected 1 more byte") }
        defer { position += 1 }
        return bytes[position]
    }

    /// The next byte without consuming it, or nil at the end.
    func peekByte() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    func readBool() throws(BinaryCodingError) -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let byte: throw BinaryCodingError(.invalidValue, "invalid Bool byte \(byte) (expected 0 or 1)")
        }
    }

    /// Reads a presence byte: true for 1, false for 0.
    func readPresence() throws(BinaryCodingError) -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let byte: throw BinaryCodingError(.invalidValue, "invalid presence flag \(byte) (expected 0 or 1)")
        }
    }

    @inline(__always)
    func readVarint() throws(BinaryCodingError) -> UInt64 {
        if position < bytes.count, bytes[position] < 0x80 {
            defer { position += 1 }
            return UInt64(bytes[position])
        }
        return try readVarintSlow()
    }

    private func readVarintSlow() throws(BinaryCodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = position
        while true {
            guard index < bytes.count else { throw Self.truncated("the input ends inside a varint") }
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 {
                throw BinaryCodingError(.invalidValue, "varint overflows 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                if byte == 0 && shift > 0 {
                    throw BinaryCodingError(.invalidValue, "varint is not in its shortest form")
                }
                position = index
                return result
            }
            shift += 7
        }
    }

    private func readVarint128() throws(BinaryCodingError) -> UInt128 {
        var result: UInt128 = 0
        var shift = 0
        var index = position
        while true {
            guard index < bytes.count else { throw Self.truncated("the input ends inside a varint") }
            let byte = bytes[index]
            index += 1
            if shift == 126 && byte > 3 {
                throw BinaryCodingError(.invalidValue, "varint overflows 128 bits")
            }
            result |= UInt128(byte & 0x7F) << shift
            if byte < 0x80 {
                if byte == 0 && shift > 0 {
                    throw BinaryCodingError(.invalidValue, "varint is not in its shortest form")
                }
                position = index
                return result
            }
            shift += 7
        }
    }

    func read(_: UInt128.Type) throws(BinaryCodingError) -> UInt128 { try readVarint128() }

    func read(_: Int128.Type) throws(BinaryCodingError) -> Int128 {
        let raw = try readVarint128()
        return Int128(bitPattern: raw >> 1) ^ -Int128(bitPattern: raw & 1)
    }

    func read(_: UInt64.Type) throws(BinaryCodingError) -> UInt64 { try readVarint() }
    func read(_: UInt.Type) throws(BinaryCodingError) -> UInt { try narrow(try readVarint()) }
    func read(_: UInt32.Type) throws(BinaryCodingError) -> UInt32 { try narrow(try readVarint()) }
    func read(_: UInt16.Type) throws(BinaryCodingError) -> UInt16 { try narrow(try readVarint()) }
    func read(_: Int8.Type) throws(BinaryCodingError) -> Int8 { Int8(bitPattern: try readByte()) }
    func read(_: Int64.Type) throws(BinaryCodingError) -> Int64 { Self.unzigzag(try readVarint()) }
    func read(_: Int.Type) throws(BinaryCodingError) -> Int { try narrow(Self.unzigzag(try readVarint())) }
    func read(_: Int32.Type) throws(BinaryCodingError) -> Int32 { try narrow(Self.unzigzag(try readVarint())) }
    func read(_: Int16.Type) throws(BinaryCodingError) -> Int16 { try narrow(Self.unzigzag(try readVarint())) }
    func read(_: Float.Type) throws(BinaryCodingError) -> Float { Float(bitPattern: try readFixed()) }
    func read(_: Double.Type) throws(BinaryCodingError) -> Double { Double(bitPattern: try readFixed()) }

    private func narrow<Wide: FixedWidthInteger, Narrow: FixedWidthInteger>(
        _ value: Wide
    ) throws(BinaryCodingError) -> Narrow {
        guard let narrow = Narrow(exactly: value) else {
            throw BinaryCodingError(.invalidValue, "\(value) does not fit in \(Narrow.self)")
        }
        return narrow
    }

    static func unzigzag(_ raw: UInt64) -> Int64 {
        Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    private func readFixed<I: FixedWidthInteger>() throws(BinaryCodingError) -> I {
        let size = MemoryLayout<I>.size
        guard remaining >= size else { throw Self.truncated("expected \(size) more bytes, \(remaining) remain") }
        defer { position += size }
        return I(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: I.self))
    }

    /// Reads a varint length and checks that many bytes remain.
    func readLength() throws(BinaryCodingError) -> Int {
        let raw = try readVarint()
        guard raw <= UInt64(Int.max) else {
            throw BinaryCodingError(.lengthTooLarge, "length \(raw) is too large")
        }
        let length = Int(raw)
        guard length <= remaining else {
            throw BinaryCodingError(.truncated, "length \(length) exceeds the \(remaining) bytes that remain")
        }
        return length
    }

    /// Reads a varint collection count and checks it against `maxCollectionCount`.
    func readCount() throws(BinaryCodingError) -> Int {
        let raw = try readVarint()
        guard raw <= UInt64(maxCollectionCount) else {
            throw BinaryCodingError(.lengthTooLarge, "count \(raw) exceeds the limit of \(maxCollectionCount)")
        }
        return Int(raw)
    }

    func readString() throws(BinaryCodingError) -> String {
        let length = try readLength()
        defer { position += length }
        return try Self.string(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)]))
    }

    /// Makes a string of UTF-8 bytes, rejecting invalid UTF-8.
    private static func string(_ raw: UnsafeRawBufferPointer) throws(BinaryCodingError) -> String {
        guard let string = UTF8Text.decode(raw) else {
            throw BinaryCodingError(.invalidValue, "string is not valid UTF-8")
        }
        return string
    }

    func readByteArray() throws(BinaryCodingError) -> [UInt8] {
        let count = try readCount()
        guard count <= remaining else {
            throw BinaryCodingError(.truncated, "count \(count) exceeds the \(remaining) bytes that remain")
        }
        defer { position += count }
        return Array(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)]))
    }

    /// Reads a key tag and checks it is `key`'s string value.
    func readTag(_ key: some CodingKey) throws(BinaryCodingError) {
        let length = try readLength()
        let tag = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)])
        position += length
        guard key.stringValue.utf8.elementsEqual(tag) else {
            let found = String(decoding: tag, as: UTF8.self)
            throw BinaryCodingError(.invalidValue, "expected the tag \"\(key.stringValue)\", found \"\(found)\"")
        }
    }

    /// The key tag at the current position, without consuming it, or nil if there is none.
    func peekTag() -> String? {
        let start = position
        defer { position = start }
        return try? readString()
    }

    /// Reads a map key: a string key (`2·length`, UTF-8) or an integer key (`1`, zigzag varint).
    func readMapKey<Key: CodingKey>(_: Key.Type) throws(BinaryCodingError) -> Key {
        let header = try readVarint()
        if header == 1 {
            let int = Self.unzigzag(try readVarint())
            guard let value = Int(exactly: int),
                  let key = Key(intValue: value) ?? Key(stringValue: String(value)) else {
                throw BinaryCodingError(.invalidValue, "\(int) is not a valid \(Key.self)")
            }
            return key
        }
        guard header & 1 == 0 else {
            throw BinaryCodingError(.invalidValue, "invalid map key header \(header)")
        }
        let length = Int(header >> 1)
        guard length <= remaining else {
            throw BinaryCodingError(.truncated, "length \(length) exceeds the \(remaining) bytes that remain")
        }
        defer { position += length }
        let string = try Self.string(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)]))
        guard let key = Key(stringValue: string) else {
            throw BinaryCodingError(.invalidValue, "\"\(string)\" is not a valid \(Key.self)")
        }
        return key
    }

    static func truncated(_ detail: String) -> BinaryCodingError {
        BinaryCodingError(.truncated, "input ended early: \(detail)")
    }
}

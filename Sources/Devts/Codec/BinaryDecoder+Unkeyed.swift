extension BinaryDecoder {
    /// An unkeyed container: a varint element count, then the elements.
    struct UnkeyedDecoder: UnkeyedDecodingContainer {
        let state: State
        private let total: Int
        private(set) var currentIndex = 0

        var codingPath: [any CodingKey] { [] }
        var count: Int? { total }
        var isAtEnd: Bool { currentIndex >= total }

        /// Opens an unkeyed container at the current position, reading its count.
        ///
        /// The count is only checked against `maxCollectionCount`, as elements may take no bytes;
        /// nothing is allocated from it here, each element read checks the input, and elements
        /// that take no bytes are counted against `maxCollectionCount` across the whole decode.
        init(opening state: State) throws(BinaryCodingError) {
            self.state = state
            total = try state.readCount()
        }

        /// Runs `body` for the next element, putting its index on the coding path of any error.
        @inline(__always)
        private mutating func read<V>(
            _ body: (State) throws(BinaryCodingError) -> V
        ) throws(BinaryCodingError) -> V {
            do throws(BinaryCodingError) {
                guard currentIndex < total else {
                    throw BinaryCodingError(.truncated, "the unkeyed container's \(total) elements are exhausted")
                }
                let start = state.position
                let value = try body(state)
                if state.position == start { try state.countEmptyElement() }
                currentIndex += 1
                return value
            } catch {
                throw error.under(index: currentIndex)
            }
        }

        /// Consumes a presence byte; when it is 1 the value is left for a following `decode`.
        mutating func decodeNil() throws -> Bool {
            let isPresent = try read { s throws(BinaryCodingError) in try s.readPresence() }
            if isPresent { currentIndex -= 1 }
            return !isPresent
        }

        mutating func decode(_: Bool.Type) throws -> Bool { try read { s throws(BinaryCodingError) in try s.readBool() } }
        mutating func decode(_: String.Type) throws -> String { try read { s throws(BinaryCodingError) in try s.readString() } }
        mutating func decode(_: Double.Type) throws -> Double { try read { s throws(BinaryCodingError) in try s.read(Double.self) } }
        mutating func decode(_: Float.Type) throws -> Float { try read { s throws(BinaryCodingError) in try s.read(Float.self) } }
        mutating func decode(_: Int.Type) throws -> Int { try read { s throws(BinaryCodingError) in try s.read(Int.self) } }
        mutating func decode(_: Int8.Type) throws -> Int8 { try read { s throws(BinaryCodingError) in try s.read(Int8.self) } }
        mutating func decode(_: Int16.Type) throws -> Int16 { try read { s throws(BinaryCodingError) in try s.read(Int16.self) } }
        mutating func decode(_: Int32.Type) throws -> Int32 { try read { s throws(BinaryCodingError) in try s.read(Int32.self) } }
        mutating func decode(_: Int64.Type) throws -> Int64 { try read { s throws(BinaryCodingError) in try s.read(Int64.self) } }
        mutating func decode(_: Int128.Type) throws -> Int128 { try read { s throws(BinaryCodingError) in try s.read(Int128.self) } }
        mutating func decode(_: UInt.Type) throws -> UInt { try read { s throws(BinaryCodingError) in try s.read(UInt.self) } }
        mutating func decode(_: UInt8.Type) throws -> UInt8 { try read { s throws(BinaryCodingError) in try s.readByte() } }
        mutating func decode(_: UInt16.Type) throws -> UInt16 { try read { s throws(BinaryCodingError) in try s.read(UInt16.self) } }
        mutating func decode(_: UInt32.Type) throws -> UInt32 { try read { s throws(BinaryCodingError) in try s.read(UInt32.self) } }
        mutating func decode(_: UInt64.Type) throws -> UInt64 { try read { s throws(BinaryCodingError) in try s.read(UInt64.self) } }
        mutating func decode(_: UInt128.Type) throws -> UInt128 { try read { s throws(BinaryCodingError) in try s.read(UInt128.self) } }

        mutating func decode<T: Decodable>(_: T.Type) throws -> T {
            try read { s throws(BinaryCodingError) in try s.decodeValue(T.self) }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy type: NestedKey.Type
        ) throws -> KeyedDecodingContainer<NestedKey> {
            try read { s throws(BinaryCodingError) in
                KeyedDecodingContainer(try KeyedDecoder<NestedKey>(opening: s))
            }
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try read { s throws(BinaryCodingError) in try UnkeyedDecoder(opening: s) }
        }

        mutating func superDecoder() throws -> any Decoder {
            try read { s throws(BinaryCodingError) in Level(state: s, valueType: Never.self) }
        }
    }

    /// A single-value container: the value itself, preceded by a presence byte for `Optional`.
    struct SingleValueDecoder: SingleValueDecodingContainer {
        let state: State
        let isOptional: Bool

        var codingPath: [any CodingKey] { [] }

        /// For `Optional`, consumes a `0` presence byte and returns true; otherwise returns false
        /// and leaves the input to `decode`, which checks the presence byte.
        func decodeNil() -> Bool {
            guard isOptional, state.peekByte() == 0 else { return false }
            _ = try? state.readByte()
            return true
        }

        @inline(__always)
        private func begin() throws(BinaryCodingError) {
            guard isOptional else { return }
            guard try state.readPresence() else {
                throw BinaryCodingError(.invalidValue, "found nil where a value was expected")
            }
        }

        func decode(_: Bool.Type) throws -> Bool { try begin(); return try state.readBool() }
        func decode(_: String.Type) throws -> String { try begin(); return try state.readString() }
        func decode(_: Double.Type) throws -> Double { try begin(); return try state.read(Double.self) }
        func decode(_: Float.Type) throws -> Float { try begin(); return try state.read(Float.self) }
        func decode(_: Int.Type) throws -> Int { try begin(); return try state.read(Int.self) }
        func decode(_: Int8.Type) throws -> Int8 { try begin(); return try state.read(Int8.self) }
        func decode(_: Int16.Type) throws -> Int16 { try begin(); return try state.read(Int16.self) }
        func decode(_: Int32.Type) throws -> Int32 { try begin(); return try state.read(Int32.self) }
        func decode(_: Int64.Type) throws -> Int64 { try begin(); return try state.read(Int64.self) }
        func decode(_: Int128.Type) throws -> Int128 { try begin(); return try state.read(Int128.self) }
        func decode(_: UInt.Type) throws -> UInt { try begin(); return try state.read(UInt.self) }
        func decode(_: UInt8.Type) throws -> UInt8 { try begin(); return try state.readByte() }
        func decode(_: UInt16.Type) throws -> UInt16 { try begin(); return try state.read(UInt16.self) }
        func decode(_: UInt32.Type) throws -> UInt32 { try begin(); return try state.read(UInt32.self) }
        func decode(_: UInt64.Type) throws -> UInt64 { try begin(); return try state.read(UInt64.self) }
        func decode(_: UInt128.Type) throws -> UInt128 { try begin(); return try state.read(UInt128.self) }

        func decode<T: Decodable>(_: T.Type) throws -> T {
            try begin()
            return try state.decodeValue(T.self)
        }
    }
}

extension BinaryDecoder {
    /// The `Decoder` handed to a value's `init(from:)`; it reads at the shared position.
    struct Level: Decoder {
        let state: State
        /// The static type being decoded, to recognise `Optional` in `singleValueContainer()`.
        let valueType: Any.Type

        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(try KeyedDecoder<Key>(opening: state))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try UnkeyedDecoder(opening: state)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer {
            SingleValueDecoder(state: state, isOptional: valueType is any BinaryEncoder.OptionalMarker.Type)
        }
    }

    /// The keys of a dynamic-key map, read up front, and the next entry to decode.
    final class MapCursor<Key: CodingKey> {
        let keys: [Key]
        var index = 0

        init(keys: [Key]) {
            self.keys = keys
        }

        func isNext(_ key: some CodingKey) -> Bool {
            index < keys.count && keys[index].stringValue == key.stringValue
        }

        func check(_ key: some CodingKey) throws(BinaryCodingError) {
            guard !isNext(key) else { return }
            let found = index < keys.count ? "\"\(keys[index].stringValue)\"" : "the end of the map"
            throw BinaryCodingError(
                .invalidValue,
                "expected the entry \"\(key.stringValue)\", found \(found); "
                    + "dynamic-key containers must be decoded in the order they were encoded")
        }
    }

    /// A keyed container: positional for fixed key sets, a counted key/value map for dynamic keys.
    struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let state: State
        /// The map's keys and position; nil for a positional container.
        let map: MapCursor<Key>?

        var codingPath: [any CodingKey] { [] }

        /// Opens a keyed container at the current position, reading a map's keys.
        init(opening state: State) throws(BinaryCodingError) {
            self.state = state
            guard !state.hasFixedKeys(Key.self) else {
                map = nil
                return
            }
            let count = try state.readCount()
            guard count <= state.remaining else {
                throw BinaryCodingError(
                    .truncated, "map count \(count) exceeds the \(state.remaining) bytes that remain")
            }
            var keys: [Key] = []
            keys.reserveCapacity(count)
            for index in 0..<count {
                do {
                    keys.append(try state.readMapKey(Key.self))
                } catch {
                    throw error.under(index: index)
                }
            }
            map = MapCursor(keys: keys)
        }

        /// A map's keys in order; for a positional container, the key of the tag at the current
        /// position (how a synthesized enum finds its case), or none.
        var allKeys: [Key] {
            if let map { return map.keys }
            guard let tag = state.peekTag(), let key = Key(stringValue: tag) else { return [] }
            return [key]
        }

        func contains(_ key: Key) -> Bool {
            map?.isNext(key) ?? true
        }

        /// Prepares to read the value for `key`: in a map, checks and consumes the next entry.
        @inline(__always)
        private func begin(_ key: Key) throws(BinaryCodingError) {
            if let map {
                try map.check(key)
                map.index += 1
            }
        }

        /// Runs `body` for the value of `key`, putting the key on the coding path of any error.
        @inline(__always)
        private func read<V>(
            _ key: Key, _ body: (State) throws(BinaryCodingError) -> V
        ) throws(BinaryCodingError) -> V {
            do {
                try begin(key)
                return try body(state)
            } catch {
                throw error.under(key: key)
            }
        }

        /// Consumes a presence byte; when it is 1 the value is left for a following `decode`.
        func decodeNil(forKey key: Key) throws -> Bool {
            do throws(BinaryCodingError) {
                try map?.check(key)
                if try state.readPresence() { return false }
                map?.index += 1
                return true
            } catch {
                throw error.under(key: key)
            }
        }

        func decode(_: Bool.Type, forKey key: Key) throws -> Bool { try read(key) { s throws(BinaryCodingError) in try s.readBool() } }
        func decode(_: String.Type, forKey key: Key) throws -> String { try read(key) { s throws(BinaryCodingError) in try s.readString() } }
        func decode(_: Double.Type, forKey key: Key) throws -> Double { try read(key) { s throws(BinaryCodingError) in try s.read(Double.self) } }
        func decode(_: Float.Type, forKey key: Key) throws -> Float { try read(key) { s throws(BinaryCodingError) in try s.read(Float.self) } }
        func decode(_: Int.Type, forKey key: Key) throws -> Int { try read(key) { s throws(BinaryCodingError) in try s.read(Int.self) } }
        func decode(_: Int8.Type, forKey key: Key) throws -> Int8 { try read(key) { s throws(BinaryCodingError) in try s.read(Int8.self) } }
        func decode(_: Int16.Type, forKey key: Key) throws -> Int16 { try read(key) { s throws(BinaryCodingError) in try s.read(Int16.self) } }
        func decode(_: Int32.Type, forKey key: Key) throws -> Int32 { try read(key) { s throws(BinaryCodingError) in try s.read(Int32.self) } }
        func decode(_: Int64.Type, forKey key: Key) throws -> Int64 { try read(key) { s throws(BinaryCodingError) in try s.read(Int64.self) } }
        func decode(_: Int128.Type, forKey key: Key) throws -> Int128 { try read(key) { s throws(BinaryCodingError) in try s.read(Int128.self) } }
        func decode(_: UInt.Type, forKey key: Key) throws -> UInt { try read(key) { s throws(BinaryCodingError) in try s.read(UInt.self) } }
        func decode(_: UInt8.Type, forKey key: Key) throws -> UInt8 { try read(key) { s throws(BinaryCodingError) in try s.readByte() } }
        func decode(_: UInt16.Type, forKey key: Key) throws -> UInt16 { try read(key) { s throws(BinaryCodingError) in try s.read(UInt16.self) } }
        func decode(_: UInt32.Type, forKey key: Key) throws -> UInt32 { try read(key) { s throws(BinaryCodingError) in try s.read(UInt32.self) } }
        func decode(_: UInt64.Type, forKey key: Key) throws -> UInt64 { try read(key) { s throws(BinaryCodingError) in try s.read(UInt64.self) } }
        func decode(_: UInt128.Type, forKey key: Key) throws -> UInt128 { try read(key) { s throws(BinaryCodingError) in try s.read(UInt128.self) } }

        func decode<T: Decodable>(_: T.Type, forKey key: Key) throws -> T {
            try read(key) { s throws(BinaryCodingError) in try s.decodeValue(T.self) }
        }

        // `decodeIfPresent` keeps the standard library default: `contains` (true unless a map's
        // next entry is another key), then `decodeNil` (the presence byte), then `decode`.

        /// Consumes the tag (positional) or entry (map) that a nested container is filed under.
        private func beginNested(_ key: some CodingKey) throws(BinaryCodingError) {
            do {
                if let map {
                    try map.check(key)
                    map.index += 1
                } else {
                    try state.readTag(key)
                }
            } catch {
                throw error.under(key: key)
            }
        }

        func nestedContainer<NestedKey: CodingKey>(
            keyedBy type: NestedKey.Type, forKey key: Key
        ) throws -> KeyedDecodingContainer<NestedKey> {
            try beginNested(key)
            return KeyedDecodingContainer(try KeyedDecoder<NestedKey>(opening: state))
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try beginNested(key)
            return try UnkeyedDecoder(opening: state)
        }

        func superDecoder() throws -> any Decoder {
            try beginNested(BinaryEncoder.SuperKey())
            return Level(state: state, valueType: Never.self)
        }

        func superDecoder(forKey key: Key) throws -> any Decoder {
            try beginNested(key)
            return Level(state: state, valueType: Never.self)
        }
    }
}

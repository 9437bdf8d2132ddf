extension BinaryEncoder {
    /// The `Encoder` handed to a value's `encode(to:)`; it writes in the scope of its parent.
    struct Level: Encoder {
        let state: State
        let scope: Scope
        /// The static type being encoded, to recognise `Optional` in `singleValueContainer()`.
        let valueType: Any.Type

        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(KeyedEncoder<Key>(opening: state, in: scope))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            UnkeyedEncoder(opening: state, in: scope)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            SingleValueEncoder(state: state, scope: scope,
                               isOptional: valueType is any OptionalMarker.Type)
        }
    }

    /// A keyed container: positional for fixed key sets, a counted key/value map for dynamic keys.
    struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let state: State
        /// The scope values are written in: the parent's (positional) or the map's own frame.
        let scope: Scope
        let isMap: Bool

        var codingPath: [any CodingKey] { [] }

        /// Opens a keyed container at the current position of `parent`.
        init(opening state: State, in parent: Scope) {
            self.state = state
            if state.hasFixedKeys(Key.self) {
                isMap = false
                scope = parent
            } else {
                isMap = true
                scope = state.enterOrRecord(parent) ? state.openFrame(isMap: true) : .poisoned
            }
        }

        /// Prepares to write the value for `key`.
        @inline(__always)
        private func begin(_ key: Key) throws(BinaryCodingError) {
            do {
                try state.enter(scope)
            } catch {
                throw error.under(key: key)
            }
            if isMap { state.addMapKey(key, in: scope) }
        }

        /// Prepares to open something nested under `key`, writing the key tag when positional.
        private func beginNested(_ key: some CodingKey) -> Bool {
            guard state.enterOrRecord(scope) else { return false }
            if isMap {
                state.addMapKey(key, in: scope)
            } else {
                state.write(key.stringValue)
            }
            return true
        }

        mutating func encodeNil(forKey key: Key) throws { try begin(key); state.writeByte(0) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: String, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Double, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Float, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Int, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: Int128, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { try begin(key); state.write(value) }
        mutating func encode(_ value: UInt128, forKey key: Key) throws { try begin(key); state.write(value) }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try begin(key)
            do {
                try state.encodeValue(value, in: scope)
            } catch {
                throw error.under(key: key)
            }
        }

        // `encodeIfPresent` always writes the presence byte, unlike the standard library default,
        // which writes nothing for nil.
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: Int128?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { try present(value, key, State.write) }
        mutating func encodeIfPresent(_ value: UInt128?, forKey key: Key) throws { try present(value, key, State.write) }

        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            try begin(key)
            guard let value else { return state.writeByte(0) }
            state.writeByte(1)
            do {
                try state.encodeValue(value, in: scope)
            } catch {
                throw error.under(key: key)
            }
        }

        @inline(__always)
        private func present<V>(_ value: V?, _ key: Key, _ write: (State) -> (V) -> Void)
            throws(BinaryCodingError) {
            try begin(key)
            if let value {
                state.writeByte(1)
                write(state)(value)
            } else {
                state.writeByte(0)
            }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type, forKey key: Key
        ) -> KeyedEncodingContainer<NestedKey> {
            let parent: Scope = beginNested(key) ? scope : .poisoned
            return KeyedEncodingContainer(KeyedEncoder<NestedKey>(opening: state, in: parent))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            UnkeyedEncoder(opening: state, in: beginNested(key) ? scope : .poisoned)
        }

        mutating func superEncoder() -> any Encoder {
            Level(state: state, scope: beginNested(SuperKey()) ? scope : .poisoned, valueType: Never.self)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            Level(state: state, scope: beginNested(key) ? scope : .poisoned, valueType: Never.self)
        }
    }

    /// An unkeyed container: a varint element count (patched when the container is done), then
    /// the elements.
    struct UnkeyedEncoder: UnkeyedEncodingContainer {
        let state: State
        /// The container's own frame.
        let scope: Scope
        private(set) var count = 0

        var codingPath: [any CodingKey] { [] }

        init(opening state: State, in parent: Scope) {
            self.state = state
            scope = state.enterOrRecord(parent) ? state.openFrame(isMap: false) : .poisoned
        }

        /// Prepares to write the next element; returns its index.
        @inline(__always)
        private mutating func begin() throws(BinaryCodingError) -> Int {
            do {
                try state.enter(scope)
            } catch {
                throw error.under(index: count)
            }
            count += 1
            return state.countElement(in: scope)
        }

        private mutating func beginNested() -> Scope {
            guard state.enterOrRecord(scope) else { return .poisoned }
            count += 1
            _ = state.countElement(in: scope)
            return scope
        }

        mutating func encodeNil() throws { _ = try begin(); state.writeByte(0) }
        mutating func encode(_ value: Bool) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: String) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Double) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Float) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Int) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Int8) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Int16) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Int32) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Int64) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: Int128) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: UInt) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: UInt8) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: UInt16) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: UInt32) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: UInt64) throws { _ = try begin(); state.write(value) }
        mutating func encode(_ value: UInt128) throws { _ = try begin(); state.write(value) }

        mutating func encode<T: Encodable>(_ value: T) throws {
            let index = try begin()
            do {
                try state.encodeValue(value, in: scope)
            } catch {
                throw error.under(index: index)
            }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(
            keyedBy keyType: NestedKey.Type
        ) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(KeyedEncoder<NestedKey>(opening: state, in: beginNested()))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            UnkeyedEncoder(opening: state, in: beginNested())
        }

        mutating func superEncoder() -> any Encoder {
            Level(state: state, scope: beginNested(), valueType: Never.self)
        }
    }

    /// A single-value container: the value itself, preceded by a presence byte for `Optional`.
    struct SingleValueEncoder: SingleValueEncodingContainer {
        let state: State
        let scope: Scope
        let isOptional: Bool

        var codingPath: [any CodingKey] { [] }

        @inline(__always)
        private func begin() throws(BinaryCodingError) {
            try state.enter(scope)
            if isOptional { state.writeByte(1) }
        }

        mutating func encodeNil() throws {
            guard isOptional else {
                throw BinaryCodingError(
                    .unsupported,
                    "encodeNil() in a single-value container is only supported for Optional; "
                        + "encode optional values as Optional fields or elements")
            }
            try state.enter(scope)
            state.writeByte(0)
        }

        mutating func encode(_ value: Bool) throws { try begin(); state.write(value) }
        mutating func encode(_ value: String) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Double) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Float) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Int) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Int8) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Int16) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Int32) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Int64) throws { try begin(); state.write(value) }
        mutating func encode(_ value: Int128) throws { try begin(); state.write(value) }
        mutating func encode(_ value: UInt) throws { try begin(); state.write(value) }
        mutating func encode(_ value: UInt8) throws { try begin(); state.write(value) }
        mutating func encode(_ value: UInt16) throws { try begin(); state.write(value) }
        mutating func encode(_ value: UInt32) throws { try begin(); state.write(value) }
        mutating func encode(_ value: UInt64) throws { try begin(); state.write(value) }
        mutating func encode(_ value: UInt128) throws { try begin(); state.write(value) }

        mutating func encode<T: Encodable>(_ value: T) throws {
            try begin()
            try state.encodeValue(value, in: scope)
        }
    }
}

extension BinaryEncoder {
    /// The key `superEncoder()` and `superDecoder()` use, whatever the container's key type.
    struct SuperKey: CodingKey {
        var stringValue: String { "super" }
        var intValue: Int? { nil }
        init() {}
        init?(stringValue: String) { if stringValue != "super" { return nil } }
        init?(intValue: Int) { nil }
    }
}

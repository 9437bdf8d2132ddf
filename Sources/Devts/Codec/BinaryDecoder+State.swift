extension BinaryDecoder {
    /// The input and read position shared by every decoder and container of one `decode` call.
    ///
    /// Every read checks its length against the bytes that remain before touching memory.
    final class State {
        // Only this class touches these, never with overlapping accesses, so the dynamic
        // exclusivity checks (a large share of the cost of small decodes) are turned off.
        @exclusivity(unchecked) var bytes: UnsafeRawBufferPointer
        @exclusivity(unchecked) var position = 0
        let maxCollectionCount: Int
        private let maxDepth: Int
        @exclusivity(unchecked) private var depth = 0
        /// Unkeyed-container elements decoded so far that occupied no bytes.
        @exclusivity(unchecked) private var emptyElements = 0
        /// The last keyed-container key type found to have a fixed key set.
        @exclusivity(unchecked) private var fixedKeys = BinaryEncoder.FixedKeyCache()

        init(bytes: UnsafeRawBufferPointer, maxCollectionCount: Int, maxDepth: Int) {
            self.bytes = bytes
            self.maxCollectionCount = maxCollectionCount
            self.maxDepth = maxDepth
        }

        /// Forgets the input: any later read through an escaped container finds no bytes.
        func invalidate() {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            position = 0
        }

        var remaining: Int { bytes.count - position }

        // MARK: Values

        /// Decodes a value at the current position.
        ///
        /// Primitive types and `[UInt8]` are read directly; anything else goes through its
        /// `init(from:)`. (Branching here rather than returning an optional from a helper keeps
        /// the runtime from instantiating `Optional<T>` metadata on every call.)
        func decodeValue<T: Decodable>(_ type: T.Type) throws(BinaryCodingError) -> T {
            if T.self == String.self { return unsafeBitCast(try readString(), to: T.self) }
            if T.self == Int.self { return unsafeBitCast(try read(Int.self), to: T.self) }
            if T.self == Double.self { return unsafeBitCast(try read(Double.self), to: T.self) }
            if T.self == Bool.self { return unsafeBitCast(try readBool(), to: T.self) }
            if T.self == UInt64.self { return unsafeBitCast(try read(UInt64.self), to: T.self) }
            if T.self == Int64.self { return unsafeBitCast(try read(Int64.self), to: T.self) }
            if T.self == UInt8.self { return unsafeBitCast(try readByte(), to: T.self) }
            if T.self == UInt32.self { return unsafeBitCast(try read(UInt32.self), to: T.self) }
            if T.self == Int32.self { return unsafeBitCast(try read(Int32.self), to: T.self) }
            if T.self == Float.self { return unsafeBitCast(try read(Float.self), to: T.self) }
            if T.self == UInt.self { return unsafeBitCast(try read(UInt.self), to: T.self) }
            if T.self == UInt16.self { return unsafeBitCast(try read(UInt16.self), to: T.self) }
            if T.self == Int16.self { return unsafeBitCast(try read(Int16.self), to: T.self) }
            if T.self == Int8.self { return unsafeBitCast(try read(Int8.self), to: T.self) }
            if T.self == [UInt8].self { return unsafeBitCast(try readByteArray(), to: T.self) }
            if T.self == Int128.self { return unsafeBitCast(try read(Int128.self), to: T.self) }
            if T.self == UInt128.self { return unsafeBitCast(try read(UInt128.self), to: T.self) }
            guard depth < maxDepth else {
                throw BinaryCodingError(.lengthTooLarge, "nesting is deeper than \(maxDepth) levels")
            }
            depth += 1
            defer { depth -= 1 }
            do {
                return try T(from: Level(state: self, valueType: T.self))
            } catch {
                throw BinaryCodingError.wrapping(error)
            }
        }

        /// Counts an unkeyed-container element that occupied no bytes. Only such elements can make
        /// work grow faster than the input, so across one decode they are bounded by
        /// `maxCollectionCount` in total, not per collection (`[[Empty]]` cannot multiply it).
        func countEmptyElement() throws(BinaryCodingError) {
            emptyElements += 1
            guard emptyElements <= maxCollectionCount else {
                throw BinaryCodingError(
                    .lengthTooLarge,
                    "more than \(maxCollectionCount) collection elements that occupy no bytes")
            }
        }

        /// Whether containers keyed by `Key` have a fixed key set (see the encoder's counterpart).
        func hasFixedKeys<Key: CodingKey>(_ type: Key.Type) -> Bool {
            fixedKeys.check(type)
        }
    }
}

/// Decodes `Decodable` values from the positional binary format written by ``BinaryEncoder``.
///
/// The decoder is built for bytes from the network. It never trusts a length: every string length,
/// byte-array length and map size is checked against the bytes that remain, and every collection
/// count against ``maxCollectionCount``, before anything is read or allocated; nesting deeper than
/// ``maxDepth`` is refused rather than allowed to exhaust the stack; booleans, presence flags,
/// varints and UTF-8 are validated. Malformed input of any kind throws ``BinaryCodingError`` and
/// never traps. Decoding reads the input in place, through one shared state object. See
/// ``BinaryEncoder`` for the format and its limitations.
public struct BinaryDecoder: Sendable {
    /// The largest element or entry count a single collection may claim, and the largest number of
    /// collection elements that occupy no bytes one decode may produce.
    public let maxCollectionCount: Int
    /// The deepest nesting of non-primitive values accepted.
    public let maxDepth: Int

    /// Creates a decoder.
    ///
    /// The limits bound the work and memory hostile input can cause. Elements that occupy at least
    /// one byte are bounded by the input length. Elements that occupy none (such as empty structs)
    /// are bounded by `maxCollectionCount` in total across the whole decode, so nesting collections
    /// cannot multiply the work. The standard library's collections grow as elements arrive rather
    /// than reserving an unkeyed container's claimed `count`; a hand-written `init(from:)` that
    /// reserves `count` up front can allocate up to `maxCollectionCount` elements. Each level of
    /// nesting takes roughly 1 KB of stack in an optimized build (about 4 KB unoptimized), so the
    /// default depth needs about 128 KB; lower it for threads with small stacks.
    ///
    /// - Parameters:
    ///   - maxCollectionCount: The largest element or entry count a single collection may claim;
    ///     larger counts throw ``BinaryCodingError/Code/lengthTooLarge``.
    ///   - maxDepth: The deepest nesting of structs, enums, collections and optionals accepted;
    ///     deeper input throws ``BinaryCodingError/Code/lengthTooLarge``.
    public init(maxCollectionCount: Int = 1 << 24, maxDepth: Int = 128) {
        self.maxCollectionCount = max(0, maxCollectionCount)
        self.maxDepth = max(1, maxDepth)
    }

    /// Decodes a value that occupies all of `bytes`.
    ///
    /// Values are read in the order the type's `init(from:)` requests them; the bytes are not
    /// copied (strings and byte arrays in the result are).
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - bytes: The encoding of exactly one value, for example a frame body.
    /// - Returns: The decoded value.
    /// - Throws: ``BinaryCodingError`` with code ``BinaryCodingError/Code/truncated`` when the bytes
    ///   end early, ``BinaryCodingError/Code/invalidValue`` for malformed bytes or a value the type
    ///   rejects, ``BinaryCodingError/Code/lengthTooLarge`` when a count or the nesting depth
    ///   exceeds a limit, ``BinaryCodingError/Code/trailingBytes`` when bytes remain after the
    ///   value, and ``BinaryCodingError/Code/unsupported`` for Codable patterns the format cannot
    ///   represent.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: ArraySlice<UInt8>) throws(BinaryCodingError) -> T {
        do {
            return try bytes.withUnsafeBytes { raw throws -> T in
                let state = State(bytes: raw, maxCollectionCount: maxCollectionCount, maxDepth: maxDepth)
                // Containers that escape `init(from:)` must not read freed memory later.
                defer { state.invalidate() }
                let value = try state.decodeValue(T.self)
                guard state.remaining == 0 else {
                    throw BinaryCodingError(.trailingBytes, "\(state.remaining) bytes remain after the value")
                }
                return value
            }
        } catch {
            // Only `BinaryCodingError` is thrown inside; `withUnsafeBytes` just erases its type.
            throw BinaryCodingError.wrapping(error)
        }
    }

    /// Decodes a value that occupies all of `bytes`.
    ///
    /// Equivalent to decoding `bytes[...]`.
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - bytes: The encoding of exactly one value.
    /// - Returns: The decoded value.
    /// - Throws: ``BinaryCodingError``, as for the `ArraySlice` overload: ``BinaryCodingError/Code/truncated``,
    ///   ``BinaryCodingError/Code/invalidValue``, ``BinaryCodingError/Code/lengthTooLarge``,
    ///   ``BinaryCodingError/Code/trailingBytes`` or ``BinaryCodingError/Code/unsupported``.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(BinaryCodingError) -> T {
        try decode(type, from: bytes[...])
    }
}

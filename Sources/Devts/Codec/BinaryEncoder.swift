/// Encodes `Encodable` values into a compact, positional binary format read by ``BinaryDecoder``.
///
/// The format carries no field names and no type tags: a value is the concatenation of its parts in
/// the order its `encode(to:)` writes them, and ``BinaryDecoder`` reads them back in the order its
/// `init(from:)` asks for them. Synthesized Codable conformances encode and decode stored properties
/// in declaration order, so they round-trip; a hand-written conformance must decode in the order it
/// encodes. Encoding a small struct makes three allocations whatever its field count: the output
/// array, one state object shared by every container, and the box the standard library wraps
/// around each keyed container.
///
/// Wire format, per Codable shape:
/// - `Bool`: one byte, `0` or `1`.
/// - `UInt8`, `Int8`: one byte (two's complement for `Int8`).
/// - `UInt16`, `UInt32`, `UInt64`, `UInt`, `UInt128`: unsigned LEB128 varint, 7 bits a byte, least
///   significant group first, high bit set on every byte but the last.
/// - `Int16`, `Int32`, `Int64`, `Int`, `Int128`: zigzag-mapped (`0, -1, 1, -2…` → `0, 1, 2, 3…`),
///   then LEB128. Every varint is in its shortest form; the decoder rejects overlong forms and values
///   that overflow the target type.
/// - `Float`, `Double`: the IEEE 754 bit pattern, 4 or 8 bytes little-endian (signed zeros and NaN
///   payloads survive).
/// - `String`: varint byte count, then that many bytes of UTF-8.
/// - `Optional`, wherever it appears (a field written by `encodeIfPresent`, an array element, the
///   top-level value): a presence byte, `0` for `nil` or `1` followed by the wrapped value. `Int??`
///   carries two presence bytes.
/// - Struct or class (a keyed container with a fixed key set): its fields' encodings, concatenated.
///   A type with no stored data encodes as zero bytes.
/// - `Array`, `Set` and any unkeyed container: varint element count, then the elements. `[UInt8]`
///   uses the same layout, copied in bulk.
/// - `Dictionary` (and any keyed container whose key type accepts arbitrary keys; see below):
///   varint entry count, then every key, then every value, in the same order. A key is either a
///   string — varint of twice its UTF-8 byte count, then the bytes — or an integer — the byte
///   `0x01`, then a zigzag varint — used when the key's `intValue` printed in decimal is its
///   `stringValue`. A dictionary whose key type is neither `String`, `Int` nor
///   `CodingKeyRepresentable` is encoded by the standard library as an unkeyed container of
///   alternating keys and values (count = 2 × entries).
/// - Enum with associated values (synthesized): the case name as a key tag — varint byte count,
///   then UTF-8 — followed by the associated values as a struct (`_0`, `_1`… for unlabeled ones).
///   More generally, `nestedContainer(keyedBy:forKey:)`, `nestedUnkeyedContainer(forKey:)` and
///   `superEncoder(forKey:)` on a fixed-key container write the key's `stringValue` as a tag, which
///   the decoder checks and reports through `allKeys`; `superEncoder()` uses the key `super`.
/// - Enum with raw values, and other types encoding through a single-value container: the value
///   alone, without overhead.
///
/// A keyed container's key type is taken to accept arbitrary keys — so its keys go on the wire —
/// when it is larger than one byte and accepts an arbitrary integer key, as `Dictionary`'s does.
/// Synthesized `CodingKeys` (enums without payloads) are always fixed.
///
/// Limitations: decoding must request values in the order they were encoded (true of synthesized
/// conformances). On keyed and unkeyed containers `encodeNil` writes a `0` presence byte and
/// `decodeNil` consumes a presence byte, returning `false` when it is `1` and leaving the value
/// that follows to a plain `decode`; that is the pairing `encodeIfPresent`/`decodeIfPresent` use,
/// whereas hand-written code that calls `encode` for the non-nil case and `encodeNil` for the nil
/// case does not round-trip. A single-value container accepts `encodeNil()` only when it encodes an
/// `Optional` (otherwise ``BinaryCodingError/Code/unsupported``, which also catches a property
/// wrapper forwarding `Optional.encode(to:)` to its own encoder). A nested container must be
/// finished before its parent is written to again; interleaving throws
/// ``BinaryCodingError/Code/unsupported``. A keyed container with arbitrary keys must be decoded
/// in its encoding order, as `Dictionary` does. `codingPath` on encoders and containers is always
/// empty (errors report the path instead), `userInfo` is empty and `encodeConditional` always
/// encodes the object. The format has no version or type information: changing a payload type's
/// stored properties changes its format.
public struct BinaryEncoder: Sendable {
    /// Creates an encoder.
    ///
    /// The encoder holds no state; one instance can be shared and used concurrently.
    public init() {}

    /// Encodes a value into a new byte array.
    ///
    /// The array is created with room for a small event, so encoding a small struct performs a
    /// constant number of allocations.
    ///
    /// - Parameters:
    ///   - value: The value to encode.
    /// - Returns: The encoding of `value`, as described on ``BinaryEncoder``.
    /// - Throws: ``BinaryCodingError`` with code ``BinaryCodingError/Code/unsupported`` when `value`
    ///   uses a Codable pattern the positional format cannot represent, or
    ///   ``BinaryCodingError/Code/invalidValue`` when its `encode(to:)` throws.
    public func encode<T: Encodable>(_ value: T) throws(BinaryCodingError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        try encode(value, into: &bytes)
        return bytes
    }

    /// Appends the encoding of a value to a byte array.
    ///
    /// Use this to build a frame in a reused buffer, after a header or next to other values. On
    /// failure `bytes` is left as it was.
    ///
    /// - Parameters:
    ///   - value: The value to encode.
    ///   - bytes: The array the encoding is appended to.
    /// - Throws: ``BinaryCodingError`` with code ``BinaryCodingError/Code/unsupported`` when `value`
    ///   uses a Codable pattern the positional format cannot represent, or
    ///   ``BinaryCodingError/Code/invalidValue`` when its `encode(to:)` throws.
    public func encode<T: Encodable>(_ value: T, into bytes: inout [UInt8]) throws(BinaryCodingError) {
        let originalCount = bytes.count
        let state = State(bytes: bytes)
        bytes = []  // `state` now holds the only reference, so appending does not copy.
        defer { bytes = state.takeBytes() }
        do {
            try state.encodeValue(value, in: Scope.root)
            try state.finish()
        } catch {
            state.truncate(to: originalCount)
            throw error
        }
    }
}

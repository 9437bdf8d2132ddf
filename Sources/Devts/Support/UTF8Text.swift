/// Strict UTF-8 decoding that stays on the standard library's fast path.
enum UTF8Text {
    /// The string whose UTF-8 is exactly `raw`, or nil when `raw` is not valid UTF-8.
    ///
    /// `String(decoding:as:)` validates on its fast, non-generic path and replaces invalid sequences;
    /// its result equals the input exactly when the input was valid. (`String(validating:as:)`
    /// instantiates generic metadata on every call: several times the cost for short strings.)
    static func decode(_ raw: UnsafeRawBufferPointer) -> String? {
        var string = String(decoding: raw, as: UTF8.self)
        return string.withUTF8({ equal(UnsafeRawBufferPointer($0), raw) }) ? string : nil
    }

    /// Whether two byte ranges hold the same bytes.
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var index = 0
        while index + 8 <= a.count {
            guard a.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                == b.loadUnaligned(fromByteOffset: index, as: UInt64.self) else { return false }
            index += 8
        }
        while index < a.count {
            guard a[index] == b[index] else { return false }
            index += 1
        }
        return true
    }
}

/// Remembers the last event name decoded, so a stream of events with the same name makes its
/// `String` once: the next name is compared byte for byte instead of validated and allocated again.
struct NameCache {
    private var bytes: [UInt8] = []
    private var string = ""

    /// The string for `raw`: the cached one when the bytes match, else a newly validated one.
    mutating func string(for raw: UnsafeRawBufferPointer) -> String? {
        if raw.count == bytes.count && bytes.withUnsafeBytes({ UTF8Text.equal($0, raw) }) { return string }
        guard let decoded = UTF8Text.decode(raw) else { return nil }
        bytes = Array(raw)
        string = decoded
        return decoded
    }
}

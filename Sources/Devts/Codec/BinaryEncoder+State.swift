extension BinaryEncoder {
    /// Where a container writes: the number of open count-prefixed frames it sits in, and the id of
    /// the innermost one, so a write through a container whose frame was closed can be detected.
    struct Scope {
        var depth: UInt32
        var frameID: UInt32

        static let root = Scope(depth: 0, frameID: 0)
        /// The scope of a container that could not be opened; every write through it fails.
        static let poisoned = Scope(depth: .max, frameID: 0)
    }

    /// A count-prefixed region still being written: an unkeyed container or a dynamic-key map.
    struct Frame {
        let id: UInt32
        /// Offset of the 1-byte count placeholder (unkeyed) or of the first value (map).
        let start: Int
        var count: Int = 0
        let isMap: Bool
        /// Map keys, already encoded, in entry order.
        var keys: [UInt8] = []
    }

    /// The output and bookkeeping shared by every encoder and container of one `encode` call.
    final class State {
        // Only this class touches these, never with overlapping accesses, so the dynamic
        // exclusivity checks (a large share of the cost of small encodes) are turned off.
        @exclusivity(unchecked) var bytes: [UInt8]
        @exclusivity(unchecked) private var frames: [Frame] = []
        @exclusivity(unchecked) private var nextFrameID: UInt32 = 0
        /// The first error raised where the Codable API cannot throw (opening a container).
        @exclusivity(unchecked) private var pendingError: BinaryCodingError?
        /// The last keyed-container key type found to have a fixed key set.
        @exclusivity(unchecked) private var fixedKeys = FixedKeyCache()

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        func takeBytes() -> [UInt8] {
            let result = bytes
            bytes = []
            return result
        }

        func truncate(to count: Int) {
            bytes.removeSubrange(count...)
            frames.removeAll()
        }

        /// Closes every frame and reports any error recorded while opening containers.
        func finish() throws(BinaryCodingError) {
            if let pendingError { throw pendingError }
            while !frames.isEmpty { closeTopFrame() }
        }

        // MARK: Scopes and frames

        /// Makes `scope` the current write position: closes frames opened inside it since, and
        /// fails if the frame the scope writes into was already closed.
        @inline(__always)
        func enter(_ scope: Scope) throws(BinaryCodingError) {
            let depth = Int(scope.depth)
            if frames.count == depth && (depth == 0 || frames[depth - 1].id == scope.frameID) { return }
            try enterSlow(scope)
        }

        private func enterSlow(_ scope: Scope) throws(BinaryCodingError) {
            if let pendingError { throw pendingError }
            let depth = Int(scope.depth)
            guard frames.count >= depth, depth == 0 || frames[depth - 1].id == scope.frameID else {
                throw BinaryCodingError(
                    .unsupported,
                    "a container was written to after a container enclosing it moved on; "
                        + "finish each nested container before writing to its parent again")
            }
            while frames.count > depth { closeTopFrame() }
        }

        /// Enters `scope` where the Codable API cannot throw; on failure records the error and
        /// returns false.
        func enterOrRecord(_ scope: Scope) -> Bool {
            do {
                try enter(scope)
                return true
            } catch {
                record(error)
                return false
            }
        }

        func record(_ error: BinaryCodingError) {
            if pendingError == nil { pendingError = error }
        }

        /// Opens a count-prefixed frame at the current end of output; call after `enter`.
        func openFrame(isMap: Bool) -> Scope {
            nextFrameID &+= 1
            frames.append(Frame(id: nextFrameID, start: bytes.count, isMap: isMap))
            if !isMap { bytes.append(0) }
            return Scope(depth: UInt32(frames.count), frameID: nextFrameID)
        }

        /// Counts one more element in the frame `scope` writes into.
        @inline(__always)
        func countElement(in scope: Scope) -> Int {
            let index = Int(scope.depth) - 1
            defer { frames[index].count += 1 }
            return frames[index].count
        }

        /// Counts one more map entry in the frame `scope` writes into and records its key.
        func addMapKey(_ key: some CodingKey, in scope: Scope) {
            let index = Int(scope.depth) - 1
            frames[index].count += 1
            if let int = key.intValue, key.stringValue == String(int) {
                frames[index].keys.append(1)
                Self.appendVarint(Self.zigzag(Int64(int)), to: &frames[index].keys)
            } else {
                var string = key.stringValue
                string.withUTF8 { utf8 in
                    Self.appendVarint(UInt64(utf8.count) << 1, to: &frames[index].keys)
                    frames[index].keys.append(contentsOf: utf8)
                }
            }
        }

        private func closeTopFrame() {
            let frame = frames.removeLast()
            if frame.isMap {
                var header: [UInt8] = []
                header.reserveCapacity(10 + frame.keys.count)
                Self.appendVarint(UInt64(frame.count), to: &header)
                header.append(contentsOf: frame.keys)
                bytes.insert(contentsOf: header, at: frame.start)
            } else if frame.count < 0x80 {
                bytes[frame.start] = UInt8(frame.count)
            } else {
                var header: [UInt8] = []
                Self.appendVarint(UInt64(frame.count), to: &header)
                bytes[frame.start] = header[0]
                bytes.insert(contentsOf: header[1...], at: frame.start + 1)
            }
        }

        // MARK: Key types

        /// Whether containers keyed by `Key` have a fixed key set (positional) rather than dynamic
        /// keys that must travel with the values.
        func hasFixedKeys<Key: CodingKey>(_ type: Key.Type) -> Bool {
            fixedKeys.check(type)
        }

        // MARK: Values

        /// Encodes a value at the current position (the caller has entered its scope).
        func encodeValue<T: Encodable>(_ value: T, in scope: Scope) throws(BinaryCodingError) {
            if writePrimitive(value) { return }
            do {
                try value.encode(to: Level(state: self, scope: scope, valueType: T.self))
            } catch {
                throw BinaryCodingError.wrapping(error)
            }
        }

        /// Writes `value` if it is a primitive type (or `[UInt8]`), else returns false.
        @inline(__always)
        private func writePrimitive<T>(_ value: T) -> Bool {
            if T.self == String.self { write(unsafeBitCast(value, to: String.self)) }
            else if T.self == Int.self { write(unsafeBitCast(value, to: Int.self)) }
            else if T.self == Double.self { write(unsafeBitCast(value, to: Double.self)) }
            else if T.self == Bool.self { write(unsafeBitCast(value, to: Bool.self)) }
            else if T.self == UInt64.self { write(unsafeBitCast(value, to: UInt64.self)) }
            else if T.self == Int64.self { write(unsafeBitCast(value, to: Int64.self)) }
            else if T.self == UInt8.self { write(unsafeBitCast(value, to: UInt8.self)) }
            else if T.self == UInt32.self { write(unsafeBitCast(value, to: UInt32.self)) }
            else if T.self == Int32.self { write(unsafeBitCast(value, to: Int32.self)) }
            else if T.self == Float.self { write(unsafeBitCast(value, to: Float.self)) }
            else if T.self == UInt.self { write(unsafeBitCast(value, to: UInt.self)) }
            else if T.self == UInt16.self { write(unsafeBitCast(value, to: UInt16.self)) }
            else if T.self == Int16.self { write(unsafeBitCast(value, to: Int16.self)) }
            else if T.self == Int8.self { write(unsafeBitCast(value, to: Int8.self)) }
            else if T.self == [UInt8].self { write(unsafeBitCast(value, to: [UInt8].self)) }
            else if T.self == Int128.self { write(unsafeBitCast(value, to: Int128.self)) }
            else if T.self == UInt128.self { write(unsafeBitCast(value, to: UInt128.self)) }
            else { return false }
            return true
        }
    }
}

extension BinaryEncoder {
    /// Whether `Key` has a fixed key set, which a positional container can rely on, rather than
    /// accepting arbitrary keys like `Dictionary`'s key type, whose keys must go on the wire.
    ///
    /// A key type of at most one byte (every enum without payloads, which is what synthesized
    /// `CodingKeys` are) cannot hold arbitrary keys, so it is fixed; this check reads the type's
    /// size only. A larger key type is taken to be dynamic when it accepts an arbitrary integer
    /// key, as `Dictionary`'s and the usual hand-written "any key" types do. Misclassifying a
    /// fixed key type as dynamic would only cost bytes: map containers round-trip too.
    static func hasFixedKeys<Key: CodingKey>(_: Key.Type) -> Bool {
        MemoryLayout<Key>.size <= 1 || Key(intValue: -0x5EED) == nil
    }

    /// Remembers the last key type found to have a fixed key set, so that a stream of values of one
    /// type asks `hasFixedKeys` once (the encoder and the decoder each keep one).
    struct FixedKeyCache {
        private var last: ObjectIdentifier?

        mutating func check<Key: CodingKey>(_: Key.Type) -> Bool {
            if MemoryLayout<Key>.size <= 1 { return true }
            let id = ObjectIdentifier(Key.self)
            if id == last { return true }
            guard BinaryEncoder.hasFixedKeys(Key.self) else { return false }
            last = id
            return true
        }
    }

    /// Marks `Optional`, whose single-value container carries a presence byte.
    protocol OptionalMarker {}
}

extension Optional: BinaryEncoder.OptionalMarker {}

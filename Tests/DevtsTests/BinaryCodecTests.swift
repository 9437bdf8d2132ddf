import Devts
import Testing

// Fixtures and helpers are nested in the suite so their names cannot clash with other test files.
extension BinaryCodecTests {
    // MARK: - Fixtures

    private struct Tick: Codable, Equatable {
        var id: UInt64
        var price: Double
        var symbol: String
    }

    private struct Empty: Codable, Equatable, Hashable {}

    private enum Side: String, Codable, Equatable {
        case buy, sell
    }

    private enum Priority: Int, Codable, Equatable {
        case low = -1, normal = 0, high = 300
    }

    private enum Command: Codable, Equatable {
        case stop
        case move(x: Int, y: Int)
        case say(String)
        case rename(from: String, to: String?)
        case batch([Command])
    }

    private struct Leg: Codable, Equatable, Hashable {
        var venue: String
        var quantity: Int32
        var limit: Double?
    }

    private struct Order: Codable, Equatable {
        var id: UInt64
        var side: Side
        var priority: Priority
        var price: Double
        var legs: [Leg]
        var note: String?
        var tags: [String]
        var fills: [Int?]
        var command: Command
        var nested: [[UInt16]]
        var maybe: Int??
        var empty: Empty
        var blob: [UInt8]
    }

    private struct Bag: Codable, Equatable {
        var names: Set<String>
        var scores: [String: Int]
        var byID: [Int: String]
        var byLeg: [Leg: Bool]
        var optionalValues: [String: Double?]
        var nested: [String: [Int: [String]]]
        var colors: [Color: Int]
    }

    private enum Color: String, Codable, CodingKeyRepresentable, Hashable {
        case red, green
    }

    private struct Scalars: Codable, Equatable {
        var bool: Bool
        var int: Int, int8: Int8, int16: Int16, int32: Int32, int64: Int64, int128: Int128
        var uint: UInt, uint8: UInt8, uint16: UInt16, uint32: UInt32, uint64: UInt64, uint128: UInt128
        var float: Float, double: Double
        var string: String

        static let minimum = Scalars(
            bool: false, int: .min, int8: .min, int16: .min, int32: .min, int64: .min, int128: .min,
            uint: .min, uint8: .min, uint16: .min, uint32: .min, uint64: .min, uint128: .min,
            float: -.greatestFiniteMagnitude, double: -.infinity, string: "")
        static let maximum = Scalars(
            bool: true, int: .max, int8: .max, int16: .max, int32: .max, int64: .max, int128: .max,
            uint: .max, uint8: .max, uint16: .max, uint32: .max, uint64: .max, uint128: .max,
            float: .leastNonzeroMagnitude, double: .greatestFiniteMagnitude, string: "héllo, 世界 🌍\u{0}")
    }

    private struct OptionalScalars: Codable, Equatable {
        var bool: Bool?, int: Int?, int8: Int8?, int16: Int16?, int32: Int32?, int64: Int64?, int128: Int128?
        var uint: UInt?, uint8: UInt8?, uint16: UInt16?, uint32: UInt32?, uint64: UInt64?, uint128: UInt128?
        var float: Float?, double: Double?, string: String?, leg: Leg?, doubleOptional: Int??
    }

    /// A recursive type, for the depth limit.
    private indirect enum Tree: Codable, Equatable {
        case leaf
        case node(Tree)

        init(depth: Int) {
            self = .leaf
            for _ in 0..<depth { self = .node(self) }
        }
    }

    private func sampleOrder(_ seed: UInt64 = 7) -> Order {
        Order(
            id: seed &* 0x9E37_79B9_7F4A_7C15, side: seed % 2 == 0 ? .buy : .sell, priority: .high,
            price: 101.25, legs: [Leg(venue: "XNYS", quantity: -5, limit: nil), Leg(venue: "Ω", quantity: 1 << 30, limit: 3.5)],
            note: seed % 3 == 0 ? nil : "rush", tags: ["a", "", "ünïcödé"], fills: [1, nil, -1, nil],
            command: .batch([.stop, .move(x: -3, y: 4), .say("hi"), .rename(from: "a", to: nil)]),
            nested: [[], [1, 2, 65535], [0]], maybe: .some(.none), empty: Empty(), blob: [0, 1, 255, 128])
    }

    private func sampleBag() -> Bag {
        Bag(
            names: ["x", "yy", ""], scores: ["alice": 3, "bob": -7, "007": 7, "12": 12, "": 0],
            byID: [0: "zero", -5: "minus five", .max: "max"],
            byLeg: [Leg(venue: "A", quantity: 1, limit: nil): true, Leg(venue: "B", quantity: 2, limit: 2): false],
            optionalValues: ["some": 1.5, "none": nil], nested: ["k": [1: ["a"], 2: []], "empty": [:]],
            colors: [.red: 1, .green: 2])
    }

    // MARK: - Helpers

    private func roundTrip<T: Codable>(_ value: T) throws -> T {
        try BinaryDecoder().decode(T.self, from: BinaryEncoder().encode(value))
    }

    private func expectRoundTrip<T: Codable & Equatable>(
        _ value: T, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(try roundTrip(value) == value, sourceLocation: sourceLocation)
    }

    private func expectDecodeError<T: Decodable>(
        _ code: BinaryCodingError.Code, _ type: T.Type, from bytes: [UInt8],
        decoder: BinaryDecoder = BinaryDecoder(), sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = #expect(throws: BinaryCodingError.self, sourceLocation: sourceLocation) {
            try decoder.decode(T.self, from: bytes)
        }
        #expect(error?.code == code, "\(error.map { "\($0)" } ?? "no error")", sourceLocation: sourceLocation)
    }


    private func littleEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

// MARK: - Tests

@Suite("Binary codec")
struct BinaryCodecTests {
    // MARK: Format

    @Test func knownEncodings() throws {
        let encoder = BinaryEncoder()
        #expect(try encoder.encode(Tick(id: 1, price: 1.5, symbol: "AB"))
            == [0x01] + littleEndian(1.5.bitPattern) + [0x02, 0x41, 0x42])
        #expect(try encoder.encode(0 as Int) == [0x00])
        #expect(try encoder.encode(-1 as Int) == [0x01])
        #expect(try encoder.encode(1 as Int) == [0x02])
        #expect(try encoder.encode(300 as UInt64) == [0xAC, 0x02])
        #expect(try encoder.encode(UInt64.max) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(try encoder.encode(-2 as Int8) == [0xFE])
        #expect(try encoder.encode(true) == [0x01])
        #expect(try encoder.encode("hé") == [0x03, 0x68, 0xC3, 0xA9])
        #expect(try encoder.encode(Float(1).bitPattern) == [0x80, 0x80, 0x80, 0xFC, 0x03])
        #expect(try encoder.encode(Float(1)) == [0x00, 0x00, 0x80, 0x3F])
        #expect(try encoder.encode(Int?.none) == [0x00])
        #expect(try encoder.encode(Int?.some(5)) == [0x01, 0x0A])
        #expect(try encoder.encode(Int??.some(.none)) == [0x01, 0x00])
        #expect(try encoder.encode([UInt8]([7, 8])) == [0x02, 0x07, 0x08])
        #expect(try encoder.encode([Int16](repeating: -1, count: 3)) == [0x03, 0x01, 0x01, 0x01])
        #expect(try encoder.encode(Leg(venue: "a", quantity: -1, limit: nil)) == [0x01, 0x61, 0x01, 0x00])
        #expect(try encoder.encode(Leg(venue: "", quantity: 0, limit: 2)) == [0x00, 0x00, 0x01] + littleEndian(2.0.bitPattern))
        #expect(try encoder.encode(Empty()) == [])
        #expect(try encoder.encode([Empty(), Empty()]) == [0x02])
        #expect(try encoder.encode(Side.sell) == [0x04] + Array("sell".utf8))
        #expect(try encoder.encode(Priority.high) == [0xD8, 0x04])
        #expect(try encoder.encode(Command.stop) == [0x04] + Array("stop".utf8))
        #expect(try encoder.encode(Command.move(x: 1, y: -1)) == [0x04] + Array("move".utf8) + [0x02, 0x01])
        #expect(try encoder.encode(Command.say("o")) == [0x03] + Array("say".utf8) + [0x01, 0x6F])
        // Dictionary: count, keys (string: 2·length + UTF-8; integer: 0x01 + zigzag), then values.
        #expect(try encoder.encode(["k": true]) == [0x01, 0x02, 0x6B, 0x01])
        #expect(try encoder.encode([-2: "x"]) == [0x01, 0x01, 0x03, 0x01, 0x78])
    }

    @Test func longCollectionCountIsPatchedAsMultiByteVarint() throws {
        let values = (0..<300).map { UInt32($0 % 100) }
        let bytes = try BinaryEncoder().encode(values)
        #expect(Array(bytes.prefix(2)) == [0xAC, 0x02])
        #expect(bytes.count == 2 + 300)
        #expect(try BinaryDecoder().decode([UInt32].self, from: bytes) == values)
        let nested = [values, [], values]
        #expect(try roundTrip(nested) == nested)
    }

    @Test func byteArrayFastPathMatchesGenericLayout() throws {
        let bytes: [UInt8] = (0..<200).map { UInt8($0) }
        let fast = try BinaryEncoder().encode(bytes)
        let generic = try BinaryEncoder().encode(ContiguousArray(bytes))
        #expect(fast == generic)
        #expect(try BinaryDecoder().decode(ContiguousArray<UInt8>.self, from: fast) == ContiguousArray(bytes))
        #expect(try BinaryDecoder().decode([UInt8].self, from: generic) == bytes)
    }

    // MARK: Round trips

    @Test func scalarBoundariesRoundTrip() throws {
        try expectRoundTrip(Scalars.minimum)
        try expectRoundTrip(Scalars.maximum)
        for value in [Int.min, -1, 0, 1, 63, 64, -64, -65, Int.max] { try expectRoundTrip(value) }
        for value in [UInt64.min, 127, 128, 16_383, 16_384, UInt64.max] { try expectRoundTrip(value) }
        for value in [Int128.min, -1, 0, Int128(Int64.max) + 1, Int128.max] { try expectRoundTrip(value) }
        for value in [UInt128.min, UInt128(UInt64.max) + 1, UInt128.max] { try expectRoundTrip(value) }
        for value in ["", "a", "é", "日本語", "🇸🇪👩‍👩‍👧", String(repeating: "x", count: 1000)] { try expectRoundTrip(value) }
    }

    @Test func floatingPointBitPatternsSurvive() throws {
        let doubles: [Double] = [0, -0.0, .infinity, -.infinity, .nan, -.nan, .signalingNaN,
                                 Double(bitPattern: 0x7FF0_0000_0000_0ABC), .leastNonzeroMagnitude, .pi]
        let decodedDoubles = try roundTrip(doubles)
        #expect(decodedDoubles.map(\.bitPattern) == doubles.map(\.bitPattern))
        let floats: [Float] = [-0.0, .nan, Float(bitPattern: 0xFFC0_1234), .leastNormalMagnitude, -.infinity]
        #expect(try roundTrip(floats).map(\.bitPattern) == floats.map(\.bitPattern))
        #expect(try roundTrip(-0.0 as Double).sign == .minus)
    }

    @Test func optionalsRoundTrip() throws {
        try expectRoundTrip(OptionalScalars())
        let full = OptionalScalars(
            bool: false, int: .min, int8: -1, int16: .max, int32: 0, int64: .max, int128: .min,
            uint: .max, uint8: 0, uint16: 1, uint32: .max, uint64: .max, uint128: .max,
            float: 1, double: -0.5, string: "", leg: Leg(venue: "v", quantity: 1, limit: nil),
            doubleOptional: .some(.some(3)))
        try expectRoundTrip(full)
        for value: Int?? in [.none, .some(.none), .some(.some(0)), .some(.some(-9))] {
            try expectRoundTrip(value)
            var holder = OptionalScalars()
            holder.doubleOptional = value
            try expectRoundTrip(holder)
        }
        try expectRoundTrip([Int?]([nil, 1, nil, nil, .max]))
        try expectRoundTrip([[String?]?]([nil, [], ["a", nil]]))
        try expectRoundTrip(Leg?.none)
        try expectRoundTrip(Optional(Optional(Optional("deep"))))
    }

    @Test func structsEnumsAndCollectionsRoundTrip() throws {
        try expectRoundTrip(sampleOrder(1))
        try expectRoundTrip(sampleOrder(3))
        try expectRoundTrip([sampleOrder(4), sampleOrder(5)])
        try expectRoundTrip(Empty())
        try expectRoundTrip([Empty](repeating: Empty(), count: 1000))
        try expectRoundTrip([[Int]]([[], [1], [2, 3], []]))
        try expectRoundTrip(Set([1, 5, 9, -100]))
        try expectRoundTrip(Set([Leg(venue: "a", quantity: 1, limit: 2), Leg(venue: "b", quantity: 2, limit: nil)]))
        for command in [Command.stop, .move(x: .min, y: .max), .say(""), .rename(from: "x", to: "y"),
                        .rename(from: "x", to: nil), .batch([]), .batch([.batch([.stop])])] {
            try expectRoundTrip(command)
        }
        try expectRoundTrip([Side.buy, .sell])
        try expectRoundTrip([Priority.low, .normal, .high])
        try expectRoundTrip(Tree(depth: 100))
    }

    @Test func dictionariesRoundTrip() throws {
        try expectRoundTrip(sampleBag())
        try expectRoundTrip([String: Int]())
        try expectRoundTrip(["": [String: Bool]()])
        let big = Dictionary(uniqueKeysWithValues: (0..<500).map { ("key\($0)", $0) })
        try expectRoundTrip(big)
        let intKeys = Dictionary(uniqueKeysWithValues: (-300..<300).map { ($0, "\($0)") })
        try expectRoundTrip(intKeys)
    }

    @Test func dynamicKeyContainersRoundTrip() throws {
        let attributes = Attributes(values: ["b": 2, "a": 1, "7": 7, "-3": -3])
        let bytes = try BinaryEncoder().encode(attributes)
        #expect(try BinaryDecoder().decode(Attributes.self, from: bytes) == attributes)
        // Entry count, all keys (integer keys as 0x01 + zigzag, string keys as 2·length + UTF-8),
        // then the values in the same order.
        #expect(bytes == [4, 0x01, 5, 0x01, 14, 2, 0x61, 2, 0x62, 5, 14, 2, 4])
    }

    @Test func hundredThousandTicksRoundTrip() throws {
        let encoder = BinaryEncoder()
        let decoder = BinaryDecoder()
        var buffer: [UInt8] = []
        for index in 0..<100_000 {
            let tick = Tick(id: UInt64(index) &* 2_654_435_761, price: Double(index) * 0.25,
                            symbol: index % 2 == 0 ? "AAPL" : "MSFT.O")
            buffer.removeAll(keepingCapacity: true)
            try encoder.encode(tick, into: &buffer)
            let decoded = try decoder.decode(Tick.self, from: buffer)
            #expect(decoded == tick)
            if decoded != tick { break }
        }
        let ticks = (0..<100_000).map { Tick(id: UInt64($0), price: Double($0), symbol: "S\($0 % 7)") }
        #expect(try roundTrip(ticks) == ticks)
    }

    // MARK: API behaviour

    @Test func encodeIntoAppendsAndLeavesBufferIntactOnFailure() throws {
        var bytes: [UInt8] = [0xAA]
        try BinaryEncoder().encode(Tick(id: 2, price: 0, symbol: ""), into: &bytes)
        #expect(bytes == [0xAA, 0x02] + littleEndian(0) + [0x00])
        let before = bytes
        #expect(throws: BinaryCodingError.self) {
            try BinaryEncoder().encode([NilWriter(), NilWriter()], into: &bytes)
        }
        #expect(bytes == before)
    }

    @Test func decodesFromSliceWithOffset() throws {
        let frame: [UInt8] = [0xFF, 0xFF] + (try BinaryEncoder().encode(sampleOrder())) + [0xEE]
        let order = try BinaryDecoder().decode(Order.self, from: frame[2..<(frame.count - 1)])
        #expect(order == sampleOrder())
    }

    @Test func handWrittenNestedContainersRoundTrip() throws {
        let value = Custom(name: "n", values: [1, 2, 3], inner: 9, base: 42)
        #expect(try roundTrip(value) == value)
        let bytes = try BinaryEncoder().encode(value)
        // A wrong tag is rejected.
        var tampered = bytes
        if let index = tampered.firstIndex(of: UInt8(ascii: "v")) { tampered[index] = UInt8(ascii: "w") }
        let error = #expect(throws: BinaryCodingError.self) { try BinaryDecoder().decode(Custom.self, from: tampered) }
        #expect(error?.code == .invalidValue)
    }

    @Test func unsupportedPatternsThrowCleanly() {
        let interleaved = #expect(throws: BinaryCodingError.self) { try BinaryEncoder().encode(Interleaved()) }
        #expect(interleaved?.code == .unsupported)
        let singleNil = #expect(throws: BinaryCodingError.self) { try BinaryEncoder().encode(NilWriter()) }
        #expect(singleNil?.code == .unsupported)
        let rejected = #expect(throws: BinaryCodingError.self) { try BinaryEncoder().encode(Rejecting()) }
        #expect(rejected?.code == .invalidValue)
        #expect(rejected?.message.contains("no thanks") == true)
    }

    @Test func escapedDecoderCannotReadAfterDecodeReturns() throws {
        let bytes = try BinaryEncoder().encode(Escaper(value: 5))
        let escaper = try BinaryDecoder().decode(Escaper.self, from: bytes)
        #expect(escaper.value == 5)
        let error = #expect(throws: BinaryCodingError.self) { try escaper.readAgain() }
        #expect(error?.code == .truncated)
    }
}

// MARK: - Malformed input

extension BinaryCodecTests {
    @Test func malformedInputThrowsTheRightCode() {
        expectDecodeError(.invalidValue, Bool.self, from: [2])
        expectDecodeError(.invalidValue, Int?.self, from: [2, 0])
        expectDecodeError(.invalidValue, Leg.self, from: [1, 0x61, 0x02, 0x07])  // limit's presence flag is 7
        expectDecodeError(.invalidValue, [Int?].self, from: [1, 0xFF])
        expectDecodeError(.invalidValue, String.self, from: [2, 0xC3, 0x28])
        expectDecodeError(.invalidValue, String.self, from: [1, 0xFF])
        expectDecodeError(.invalidValue, String.self, from: [3, 0xED, 0xA0, 0x80])  // a UTF-16 surrogate
        expectDecodeError(.invalidValue, UInt64.self, from: [0x80, 0x00])  // overlong varint
        expectDecodeError(.invalidValue, UInt64.self, from: Array(repeating: 0xFF, count: 9) + [0x02])
        expectDecodeError(.invalidValue, UInt16.self, from: [0x80, 0x80, 0x04])  // 65 536
        expectDecodeError(.invalidValue, Int32.self, from: [0x80, 0x80, 0x80, 0x80, 0x10])  // 2^31
        expectDecodeError(.invalidValue, Side.self, from: [3] + Array("bad".utf8))
        expectDecodeError(.invalidValue, Command.self, from: [4] + Array("nope".utf8))
        expectDecodeError(.invalidValue, Command.self, from: [])
        expectDecodeError(.trailingBytes, Int.self, from: [0, 0])
        expectDecodeError(.trailingBytes, Empty.self, from: [0])
        expectDecodeError(.trailingBytes, Tick.self, from: [0] + littleEndian(0) + [0, 0])
        expectDecodeError(.truncated, Tick.self, from: [1, 0, 0])
        expectDecodeError(.truncated, String.self, from: [5, 0x61])
        expectDecodeError(.truncated, Double.self, from: [0, 0, 0])
        expectDecodeError(.truncated, Int.self, from: [])
        expectDecodeError(.truncated, UInt64.self, from: [0x80, 0x80])
        expectDecodeError(.truncated, [Int].self, from: [3, 0, 0])
    }

    @Test func hugeClaimedLengthsFailWithoutAllocating() throws {
        let huge = try BinaryEncoder().encode(UInt64(1) << 62)
        expectDecodeError(.lengthTooLarge, [Int].self, from: huge)
        expectDecodeError(.lengthTooLarge, [UInt8].self, from: huge)
        expectDecodeError(.lengthTooLarge, [Empty].self, from: huge)
        expectDecodeError(.lengthTooLarge, Set<String>.self, from: huge)
        expectDecodeError(.lengthTooLarge, [String: Int].self, from: huge)
        expectDecodeError(.lengthTooLarge, [Leg: Int].self, from: huge)
        expectDecodeError(.truncated, String.self, from: huge)
        expectDecodeError(.lengthTooLarge, String.self, from: try BinaryEncoder().encode(UInt64.max))
        // Within the count limit but beyond the input: caught before any element is stored.
        let million = try BinaryEncoder().encode(UInt64(1) << 20)
        expectDecodeError(.truncated, [UInt8].self, from: million + [1, 2])
        expectDecodeError(.truncated, [Int].self, from: million + [1, 2])
        expectDecodeError(.truncated, [String: Int].self, from: million + [0, 0])
        // Zero-sized elements take no input, so only `maxCollectionCount` bounds them.
        #expect(try BinaryDecoder().decode([Empty].self, from: [5]).count == 5)
        expectDecodeError(.lengthTooLarge, [Empty].self, from: [5], decoder: BinaryDecoder(maxCollectionCount: 4))
        // …in total across the decode, so nesting cannot multiply the work: 3 × 3 > 8.
        let limited = BinaryDecoder(maxCollectionCount: 8)
        #expect(try limited.decode([[Empty]].self, from: [2, 4, 4]).map(\.count) == [4, 4])
        expectDecodeError(.lengthTooLarge, [[Empty]].self, from: [3, 3, 3, 3], decoder: limited)
    }

    @Test func nestingDepthIsLimited() throws {
        let deep = try BinaryEncoder().encode(Tree(depth: 300))
        expectDecodeError(.lengthTooLarge, Tree.self, from: deep)
        #expect(try BinaryDecoder(maxDepth: 400).decode(Tree.self, from: deep) == Tree(depth: 300))
        // Hostile input nesting far deeper than any stack allows.
        let node: [UInt8] = [4] + Array("node".utf8)
        let hostile = Array([[UInt8]](repeating: node, count: 200_000).joined())
        expectDecodeError(.lengthTooLarge, Tree.self, from: hostile)
        expectDecodeError(.lengthTooLarge, [[[Int]]].self, from: [1, 1, 1], decoder: BinaryDecoder(maxDepth: 2))
    }

    @Test func errorsReportTheCodingPath() throws {
        let error = #expect(throws: BinaryCodingError.self) {
            try BinaryDecoder().decode(Outer.self, from: [1, 0x61, 2, 1, 7])
        }
        #expect(error?.code == .invalidValue)
        #expect(error?.codingPath == "items[1].ok")
        let mapError = #expect(throws: BinaryCodingError.self) {
            try BinaryDecoder().decode([String: [Bool]].self, from: [1, 2, 0x6B, 1, 9])
        }
        #expect(mapError?.codingPath == "k[0]")
        #expect(mapError.map { "\($0)" }?.contains("at k[0]") == true)
    }

    // MARK: Fuzzing

    @Test func randomBytesNeverCrash() {
        var rng = SeededRandom(seed: 0xDE75_C0DE)
        let interesting: [UInt8] = [0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF, 0x61]
        var decoded = 0
        for _ in 0..<10_000 {
            let count = Int.random(in: 0...48, using: &rng)
            let biased = Bool.random(using: &rng)
            let bytes = (0..<count).map { _ in
                biased ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            decoded += probe(bytes)
        }
        #expect(decoded > 0)
    }

    @Test func mutatedEncodingsNeverCrash() throws {
        let encoder = BinaryEncoder()
        let seeds = [
            try encoder.encode(sampleOrder()), try encoder.encode(sampleBag()),
            try encoder.encode(Scalars.maximum), try encoder.encode(Tree(depth: 12)),
            try encoder.encode([Int??]([nil, .some(nil), 5])), try encoder.encode(Tick(id: 9, price: 1, symbol: "X")),
        ]
        var rng = SeededRandom(seed: 42)
        for iteration in 0..<10_000 {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0...Int.random(in: 0...2, using: &rng) where !bytes.isEmpty {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                switch rng.next() % 5 {
                case 0: bytes.removeSubrange(index...)
                case 1: bytes[index] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                case 2: bytes[index] = [0, 1, 0x7F, 0x80, 0xFF].randomElement(using: &rng)!
                case 3: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: index)
                default: bytes.remove(at: index)
                }
            }
            _ = probe(bytes)
        }
        // Every strict prefix of a valid encoding is rejected.
        for seed in seeds {
            for length in 0..<seed.count { _ = probe(Array(seed[..<length])) }
        }
        for length in 0..<seeds[0].count {
            #expect(throws: BinaryCodingError.self) { try BinaryDecoder().decode(Order.self, from: seeds[0][..<length]) }
        }
        for length in 0..<seeds[2].count {
            expectDecodeError(.truncated, Scalars.self, from: Array(seeds[2][..<length]))
        }
    }
}

extension BinaryCodecTests {
    /// Decodes `bytes` as several types; returns how many succeeded. Each either decodes or throws
    /// `BinaryCodingError` (the typed `throws` guarantees nothing else escapes), and whatever decodes
    /// into a type without sets or dictionaries re-encodes to exactly the same bytes.
    private func probe(_ bytes: [UInt8]) -> Int {
        let decoder = BinaryDecoder(maxCollectionCount: 1 << 12)
        var decoded = 0
        func attempt<T: Codable>(_ type: T.Type, canonical: Bool = true) {
            do {
                let value = try decoder.decode(T.self, from: bytes)
                decoded += 1
                if canonical {
                    #expect(try BinaryEncoder().encode(value) == bytes, "\(T.self) is not canonical for \(bytes)")
                }
            } catch {
                _ = error.code
            }
        }
        attempt(Tick.self)
        attempt(Order.self)
        attempt(Bag.self, canonical: false)
        attempt(Command.self)
        attempt([Int??].self)
        attempt(Scalars.self)
        attempt(OptionalScalars.self)
        attempt(Tree.self)
        attempt([String: [Int]].self, canonical: false)
        attempt([Empty].self)
        attempt(Custom.self)
        return decoded
    }

    // MARK: - Hand-written conformances

    private struct Outer: Codable {
        struct Item: Codable { var ok: Bool }
        var name: String
        var items: [Item]
    }

    /// Uses nested keyed and unkeyed containers and a super encoder.
    private struct Custom: Codable, Equatable {
        var name: String
        var values: [Int]
        var inner: Int
        var base: Int

        private enum CodingKeys: String, CodingKey { case name, values, inner }
        private enum InnerKeys: String, CodingKey { case value }

        init(name: String, values: [Int], inner: Int, base: Int) {
            (self.name, self.values, self.inner, self.base) = (name, values, inner, base)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            var list = container.nestedUnkeyedContainer(forKey: .values)
            for value in values { try list.encode(value) }
            var nested = container.nestedContainer(keyedBy: InnerKeys.self, forKey: .inner)
            try nested.encode(inner, forKey: .value)
            var base = container.superEncoder().singleValueContainer()
            try base.encode(self.base)
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            var list = try container.nestedUnkeyedContainer(forKey: .values)
            var values: [Int] = []
            while !list.isAtEnd { values.append(try list.decode(Int.self)) }
            self.values = values
            inner = try container.nestedContainer(keyedBy: InnerKeys.self, forKey: .inner).decode(Int.self, forKey: .value)
            base = try container.superDecoder().singleValueContainer().decode(Int.self)
        }
    }

    /// Encodes its entries under arbitrary keys and decodes them through `allKeys`.
    private struct Attributes: Codable, Equatable {
        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int?
            init(stringValue: String) { (self.stringValue, intValue) = (stringValue, Int(stringValue)) }
            init(intValue: Int) { (stringValue, self.intValue) = ("\(intValue)", intValue) }
        }

        var values: [String: Int]

        init(values: [String: Int]) {
            self.values = values
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in values.sorted(by: { $0.key < $1.key }) {
                try container.encode(value, forKey: AnyKey(stringValue: key))
            }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            var values: [String: Int] = [:]
            for key in container.allKeys {
                values[key.stringValue] = try container.decode(Int.self, forKey: key)
            }
            self.values = values
        }
    }

    /// Writes to a nested container after its parent moved on.
    private struct Interleaved: Encodable {
        private enum CodingKeys: CodingKey { case list, other }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            var list = container.nestedUnkeyedContainer(forKey: .list)
            try list.encode(1)
            try container.encode(2, forKey: .other)
            try list.encode(3)
        }
    }

    /// Calls `encodeNil()` on a single-value container of a non-Optional type.
    private struct NilWriter: Encodable {
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        }
    }

    /// Refuses to be encoded.
    private struct Rejecting: Encodable {
        func encode(to encoder: any Encoder) throws {
            throw EncodingError.invalidValue(self, .init(codingPath: [], debugDescription: "no thanks"))
        }
    }

    /// Keeps its decoder after `init(from:)` returns.
    private struct Escaper: Codable {
        private final class Box {
            let decoder: any Decoder
            init(_ decoder: any Decoder) { self.decoder = decoder }
        }

        var value: Int
        private var box: Box?

        init(value: Int) {
            self.value = value
        }

        init(from decoder: any Decoder) throws {
            value = try decoder.singleValueContainer().decode(Int.self)
            box = Box(decoder)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(value)
        }

        func readAgain() throws {
            _ = try box?.decoder.singleValueContainer().decode(Int.self)
        }
    }
}

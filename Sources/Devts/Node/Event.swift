/// An event received by a node: a name, a payload, and where it came from.
///
/// The payload is a slice of the bytes as they were read (no copy per event); keep it as long as
/// you need, or copy it with `bytes`.
public struct Event: Sendable {
    /// How the event was sent.
    public enum Kind: Sendable, Equatable {
        /// Broadcast to every member; `sequence` is the origin's broadcast counter.
        case broadcast(sequence: UInt64)
        /// Sent to this node only.
        case direct
        /// A request that expects a reply: answer with `Node.reply(to:with:)`.
        case request(id: UInt64)
    }

    /// The event's name.
    public let name: String
    /// The node that sent it.
    public let origin: NodeID
    /// How it was sent.
    public let kind: Kind
    /// Its payload.
    public let payload: ArraySlice<UInt8>

    /// Makes an event (received events are made by the node; this is for tests and local use).
    public init(name: String, origin: NodeID, kind: Kind, payload: ArraySlice<UInt8>) {
        self.name = name
        self.origin = origin
        self.kind = kind
        self.payload = payload
    }

    /// The payload as a new array.
    public var bytes: [UInt8] { Array(payload) }

    /// This event, with its payload copied out when it is a small part of a large buffer (a read
    /// of many frames), so that keeping the event does not keep the whole buffer alive.
    func compacted(bufferSize: Int) -> Event {
        guard bufferSize > 64 * 1024, payload.count < bufferSize / 4 else { return self }
        return Event(name: name, origin: origin, kind: kind, payload: ArraySlice(Array(payload)))
    }

    /// The payload as text, when it is valid UTF-8.
    public var text: String? { payload.withUnsafeBytes { UTF8Text.decode($0) } }

    /// Decodes the payload as a typed event.
    ///
    /// - Throws: `BinaryCodingError` when the payload is not a valid encoding of `T`.
    public func decode<T: TypedEvent>(_ type: T.Type) throws -> T {
        try BinaryDecoder().decode(T.self, from: payload)
    }
}

/// An event type: a Swift type with a static name whose values travel as its payload, encoded with
/// `BinaryEncoder` (compact and positional; see docs/PROTOCOL.md).
///
/// ```swift
/// struct PriceChanged: TypedEvent {
///     static let eventName = "price-changed"
///     var symbol: String
///     var price: Double
/// }
/// try await node.broadcast(PriceChanged(symbol: "ACME", price: 12.5))
/// for await change in await node.events(of: PriceChanged.self) { ... }
/// ```
public protocol TypedEvent: Codable, Sendable {
    /// The event name on the wire.
    static var eventName: String { get }
}

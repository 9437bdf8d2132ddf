/// The frame types of the wire protocol, with their numbers on the wire.
///
/// ONLY APPEND TO THIS LIST: a number, once released, keeps its meaning (docs/PROTOCOL.md).
enum FrameType: UInt8 {
    case hello = 1
    case helloAck = 2
    case reject = 3
    case joinRequest = 4
    case memberList = 5
    case memberJoined = 6
    case leave = 7
    case event = 8
    case message = 9
    case request = 10
    case reply = 11
    case clientEmit = 12
    case membersQuery = 13
}

/// Constants of the handshake.
enum WireProtocol {
    /// "DVTS" as a big-endian u32.
    static let magic: UInt32 = 0x4456_5453
    /// The protocol version this build speaks; a peer with another version is refused.
    static let version: UInt16 = 1
}

/// What the opener of a connection is.
enum ConnectionRole: UInt8, Sendable {
    /// A member of the cluster, or a node joining it: it will carry events.
    case member = 0
    /// A tool (e.g. `devts members --via`) that asks one node something and leaves; never a member.
    case client = 1
}

/// Why a handshake was refused (the REJECT frame's code).
enum RejectCode: UInt16, Sendable {
    case badMagic = 1
    case versionMismatch = 2
    case clusterMismatch = 3
    case duplicateID = 4
    case protocolError = 5
    case shuttingDown = 6
}

/// Status of a REPLY frame.
enum ReplyStatus: UInt8, Sendable {
    /// The payload is the reply.
    case ok = 0
    /// No handler for the request's name on the target; the payload is a UTF-8 message.
    case noHandler = 1
    /// The handler threw; the payload is a UTF-8 message.
    case handlerFailed = 2
}

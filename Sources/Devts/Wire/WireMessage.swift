/// A node as the wire describes it: id, incarnation, name and the address it can be reached at.
struct NodeInfo: Sendable, Equatable {
    var id: NodeID
    var incarnation: UInt64
    var name: String
    var address: String
}

/// The handshake's first frame (HELLO).
struct Hello: Sendable, Equatable {
    var magic: UInt32 = WireProtocol.magic
    var version: UInt16 = WireProtocol.version
    var role: ConnectionRole
    var cluster: String
    var node: NodeInfo
}

/// One frame of the wire protocol, decoded. Byte fields are slices of the received batch.
enum WireMessage: Sendable {
    case hello(Hello)
    case helloAck(NodeInfo)
    case reject(code: UInt16, reason: String)
    case joinRequest
    case memberList([NodeInfo])
    case memberJoined(NodeInfo)
    case leave(NodeID)
    case event(origin: NodeID, sequence: UInt64, name: String, payload: ArraySlice<UInt8>)
    case message(origin: NodeID, name: String, payload: ArraySlice<UInt8>)
    case request(origin: NodeID, requestID: UInt64, name: String, payload: ArraySlice<UInt8>)
    case reply(requestID: UInt64, status: UInt8, payload: ArraySlice<UInt8>)
    case clientEmit(requestID: UInt64, name: String, payload: ArraySlice<UInt8>)
    case membersQuery

    /// The largest member list a MEMBER_LIST frame may announce; bounds the allocation.
    static let maxMembers = 65_536

    /// Decodes one frame body (the bytes after the length prefix).
    ///
    /// - Throws: `WireError` for an unknown type, a short or overlong frame, or an invalid field.
    static func decode(_ frame: ArraySlice<UInt8>) throws(WireError) -> WireMessage {
        var names = NameCache()
        return try decode(frame, names: &names)
    }

    /// Decodes one frame body, reusing `names` for event names that repeat from frame to frame.
    static func decode(_ frame: ArraySlice<UInt8>, names: inout NameCache) throws(WireError) -> WireMessage {
        var reader = WireReader(frame)
        let rawType = try reader.u8("type")
        guard let type = FrameType(rawValue: rawType) else { throw WireError.unknownType(rawType) }
        let message: WireMessage
        switch type {
        case .hello:
            let magic = try reader.u32("magic")
            guard magic == WireProtocol.magic else {
                throw WireError.invalid(field: "magic", reason: "is not DVTS: not a Devts peer")
            }
            let version = try reader.u16("version")
            let rawRole = try reader.u8("role")
            guard let role = ConnectionRole(rawValue: rawRole) else {
                throw WireError.invalid(field: "role", reason: "\(rawRole) is not a known role")
            }
            let cluster = try reader.string("cluster")
            let node = try reader.nodeInfo()
            message = .hello(Hello(magic: magic, version: version, role: role, cluster: cluster, node: node))
        case .helloAck:
            message = .helloAck(try reader.nodeInfo())
        case .reject:
            message = .reject(code: try reader.u16("code"), reason: try reader.string("reason"))
        case .joinRequest:
            message = .joinRequest
        case .memberList:
            let count = Int(try reader.u32("count"))
            // Each member takes at least 34 bytes: check before reserving anything.
            guard count <= maxMembers, count * 34 <= reader.remaining else {
                throw WireError.invalid(field: "count", reason: "\(count) members cannot fit in \(reader.remaining) bytes")
            }
            var members: [NodeInfo] = []
            members.reserveCapacity(count)
            for _ in 0..<count { members.append(try reader.nodeInfo()) }
            message = .memberList(members)
        case .memberJoined:
            message = .memberJoined(try reader.nodeInfo())
        case .leave:
            message = .leave(try reader.nodeID("node id"))
        case .event:
            message = .event(
                origin: try reader.nodeID("origin"), sequence: try reader.u64("sequence"),
                name: try reader.eventName(cache: &names), payload: try reader.byteField("payload"))
        case .message:
            message = .message(
                origin: try reader.nodeID("origin"), name: try reader.eventName(cache: &names),
                payload: try reader.byteField("payload"))
        case .request:
            message = .request(
                origin: try reader.nodeID("origin"), requestID: try reader.u64("request id"),
                name: try reader.eventName(cache: &names), payload: try reader.byteField("payload"))
        case .reply:
            message = .reply(
                requestID: try reader.u64("request id"), status: try reader.u8("status"),
                payload: try reader.byteField("payload"))
        case .clientEmit:
            message = .clientEmit(
                requestID: try reader.u64("request id"), name: try reader.eventName(cache: &names),
                payload: try reader.byteField("payload"))
        case .membersQuery:
            message = .membersQuery
        }
        try reader.expectEnd(type)
        return message
    }

    /// Encodes the frame body (without the length prefix) into `writer`.
    func encode(into writer: inout WireWriter) {
        switch self {
        case .hello(let hello):
            writer.u8(FrameType.hello.rawValue)
            writer.u32(hello.magic)
            writer.u16(hello.version)
            writer.u8(hello.role.rawValue)
            writer.string(hello.cluster)
            writer.nodeInfo(hello.node)
        case .helloAck(let node):
            writer.u8(FrameType.helloAck.rawValue)
            writer.nodeInfo(node)
        case .reject(let code, let reason):
            writer.u8(FrameType.reject.rawValue)
            writer.u16(code)
            writer.string(reason)
        case .joinRequest:
            writer.u8(FrameType.joinRequest.rawValue)
        case .memberList(let members):
            writer.u8(FrameType.memberList.rawValue)
            writer.u32(UInt32(members.count))
            for member in members { writer.nodeInfo(member) }
        case .memberJoined(let node):
            writer.u8(FrameType.memberJoined.rawValue)
            writer.nodeInfo(node)
        case .leave(let id):
            writer.u8(FrameType.leave.rawValue)
            writer.nodeID(id)
        case .event(let origin, let sequence, let name, let payload):
            writer.u8(FrameType.event.rawValue)
            writer.nodeID(origin)
            writer.u64(sequence)
            writer.string(name)
            writer.byteField(payload)
        case .message(let origin, let name, let payload):
            writer.u8(FrameType.message.rawValue)
            writer.nodeID(origin)
            writer.string(name)
            writer.byteField(payload)
        case .request(let origin, let requestID, let name, let payload):
            writer.u8(FrameType.request.rawValue)
            writer.nodeID(origin)
            writer.u64(requestID)
            writer.string(name)
            writer.byteField(payload)
        case .reply(let requestID, let status, let payload):
            writer.u8(FrameType.reply.rawValue)
            writer.u64(requestID)
            writer.u8(status)
            writer.byteField(payload)
        case .clientEmit(let requestID, let name, let payload):
            writer.u8(FrameType.clientEmit.rawValue)
            writer.u64(requestID)
            writer.string(name)
            writer.byteField(payload)
        case .membersQuery:
            writer.u8(FrameType.membersQuery.rawValue)
        }
    }

    /// The frame body as a new array (for tests and rare frames; hot paths reuse a writer).
    func encoded() -> [UInt8] {
        var writer = WireWriter()
        encode(into: &writer)
        return writer.bytes
    }
}

extension WireReader {
    /// An event name: a string of 1 to 65535 bytes.
    mutating func eventName(cache: inout NameCache) throws(WireError) -> String {
        let name = try string("name", cache: &cache)
        if name.isEmpty { throw WireError.invalid(field: "name", reason: "is empty") }
        return name
    }

    mutating func nodeInfo() throws(WireError) -> NodeInfo {
        NodeInfo(
            id: try nodeID("node id"), incarnation: try u64("incarnation"),
            name: try string("node name"), address: try string("address"))
    }
}

extension WireWriter {
    mutating func nodeInfo(_ node: NodeInfo) {
        nodeID(node.id)
        u64(node.incarnation)
        string(node.name)
        string(node.address)
    }
}

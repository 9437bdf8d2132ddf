import DevtsRuntime
import Logging

/// A member of a Devts cluster: it joins through any member's cluster port (or starts a new
/// cluster), keeps the membership, and sends and receives named events.
///
/// ```swift
/// let node = try await Node.start(NodeConfiguration(join: [try SocketAddress(parsing: "127.0.0.1:7946")]))
/// await node.on("greeting") { event in print(event.text ?? "") }
/// try await node.broadcast("greeting", Array("hello".utf8))
/// try await node.shutdown()
/// ```
///
/// Each node runs its own libuv event loop on a thread of its own; the actor is pinned to that
/// loop, so its state is touched only there. Public methods are safe to call from anywhere. Handlers
/// registered with `on(_:_:)` run on the loop thread, one at a time, in order of arrival: keep them
/// short and never block in them. The `AsyncSequence`s (`events(named:)`, `membershipChanges()`) are
/// for everything else.
///
/// Delivery: a broadcast reaches every live member once, in the order its origin sent it. An event in
/// flight to a member that fails is lost for that member.
public actor Node {
    /// The loop the node runs on.
    public nonisolated let loop: EventLoop
    /// This node's id: random, new on every start.
    public nonisolated let id: NodeID
    /// The configuration the node was started with.
    public nonisolated let configuration: NodeConfiguration
    /// The node's name (the configured one, or `node-` and the short id).
    public nonisolated let name: String
    nonisolated let logger: Logger

    /// The node's loop: the actor runs on the loop thread.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    // The actor's state is only touched on its loop thread, one job at a time: Swift's dynamic
    // exclusivity checks on the properties used per event cost more than the work itself.
    enum State { case starting, running, stopping, stopped }
    @exclusivity(unchecked) var state: State = .starting
    var listener: TCPListener?
    /// The address other nodes reach this one at (the cluster port), known once listening.
    public internal(set) var address: SocketAddress
    /// True when no join address answered and this node started a new cluster.
    public internal(set) var bootstrapped = false
    let incarnation: UInt64 = 0

    // Connections and members.
    @exclusivity(unchecked) var links: [UInt64: Link] = [:]
    @exclusivity(unchecked) var memberLinks: [NodeID: Link] = [:]
    @exclusivity(unchecked) var view: [NodeID: Cluster.Member] = [:]
    /// Members this node is connecting to right now (never two connections at once to one member).
    var dialling: Set<NodeID> = []
    /// `shutdown()` calls waiting for a stop already under way.
    var stoppedWaiters: [CheckedContinuation<Void, Never>] = []
    var reconnecting: [NodeID: LoopTimer] = [:]
    var expectedMembers: [NodeID: LoopTimer] = [:]
    var changeStreams: [UInt64: AsyncStream<Cluster.MembershipChange>.Continuation] = [:]
    var stopWaiters: [CheckedContinuation<Void, Never>] = []

    // Events.
    @exclusivity(unchecked) var writer = WireWriter(capacity: 64 * 1024)
    @exclusivity(unchecked) var broadcastSequence: UInt64 = 0
    @exclusivity(unchecked) var lastSequence: [NodeID: UInt64] = [:]
    /// Handlers and streams by event name: one lookup per delivered event.
    @exclusivity(unchecked) var listeners: [String: Listeners] = [:]
    /// Streams of every event, whatever its name.
    @exclusivity(unchecked) var allEventStreams: [UInt64: Subscription<Event>] = [:]
    @exclusivity(unchecked) var batchStreams: [UInt64: (names: Set<String>?, subscription: Subscription<[Event]>)] = [:]
    /// True while a stream is at its buffer limit and member links are not read.
    var inboundPaused = false
    var nextStreamID: UInt64 = 0

    // Requests.
    var nextRequestID: UInt64 = 0
    @exclusivity(unchecked) var pendingRequests: [UInt64: PendingRequest] = [:]
    @exclusivity(unchecked) var responders: [String: @Sendable (Event) async throws -> [UInt8]] = [:]

    /// Counters since the node started.
    @exclusivity(unchecked) public internal(set) var statistics = Statistics()

    /// Counters of a node's traffic and trouble.
    public struct Statistics: Sendable {
        /// Broadcasts this node originated (each counted once, however many members got it).
        public var eventsBroadcast = 0
        /// Direct events and requests this node sent.
        public var messagesSent = 0
        /// Events (broadcast and direct) delivered to this node's handlers and streams.
        public var eventsReceived = 0
        /// Broadcasts dropped because they had been delivered already.
        public var duplicatesDropped = 0
        /// Frames that did not follow the protocol; each closed its connection.
        public var framesRejected = 0
        /// Handshakes refused (other cluster, version, duplicate id).
        public var handshakesRejected = 0
        /// Times reading from members paused because a stream's consumer fell behind.
        public var inboundPauses = 0
    }

    init(loop: EventLoop, configuration: NodeConfiguration) {
        self.loop = loop
        self.configuration = configuration
        let id = NodeID.random()
        self.id = id
        self.name = configuration.name.isEmpty ? "node-\(id.short)" : configuration.name
        var logger = configuration.logger
        logger[metadataKey: "node"] = "\(self.name)"
        self.logger = logger
        self.address = configuration.advertise ?? configuration.listen
    }

    /// Starts a node: listens on its cluster port, then joins through the first configured cluster
    /// address that answers, or starts a new cluster when none does.
    ///
    /// - Parameters:
    ///   - configuration: where to listen, whom to join, and limits.
    ///   - setup: runs once the node listens and before it joins: the place to register handlers,
    ///     responders and streams (`membershipChanges()`, `events(named:)`) so that nothing that
    ///     arrives during the join is missed. Its error stops the start.
    /// - Returns: the running node.
    /// - Throws: `NodeError` with code `.invalidConfiguration`, `.listenFailed`, or `.joinFailed`
    ///   (when `requireJoin` is set and no cluster address answered), or what `setup` throws.
    public static func start(
        _ configuration: NodeConfiguration,
        setup: @Sendable (Node) async throws -> Void = { _ in }
    ) async throws -> Node {
        try configuration.validate()
        let loop = try EventLoop(name: "devts-node")
        let node = Node(loop: loop, configuration: configuration)
        do {
            try await node.listen()
            try await setup(node)
            try await node.startUp()
        } catch {
            await node.stop(announce: false)
            try? await loop.shutdown()
            throw error
        }
        return node
    }

    /// This node as a member: its id, name, cluster address, and status alive.
    public var info: Cluster.Member {
        Cluster.Member(id: id, name: name, address: address.description, status: .alive)
    }

    var selfInfo: NodeInfo {
        NodeInfo(id: id, incarnation: incarnation, name: name, address: address.description)
    }

    /// The members this node knows, itself included, sorted by name then id.
    public var members: [Cluster.Member] {
        ([info] + view.values).sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    /// The member with `id`, if this node knows it (itself included).
    public func member(_ id: NodeID) -> Cluster.Member? {
        id == self.id ? info : view[id]
    }

    /// Leaves the cluster gracefully and stops: the others are told and report this node *left* at
    /// once; frames already queued are delivered first; pending requests fail with `.shutDown`; then
    /// the loop closes every handle and stops. Calling it again does nothing.
    ///
    /// - Throws: `EventLoopError.loopCloseFailed` if a handle was left open (a bug worth reporting).
    public nonisolated func shutdown() async throws {
        await stop(announce: true)
        try await loop.shutdown()
    }

    /// Stops without telling the others, as a crash would: they will see this node *fail*. For tests
    /// of failure handling; applications call `shutdown()`.
    public nonisolated func terminate() async throws {
        await stop(announce: false)
        try await loop.shutdown()
    }

    /// Starting or running: the node takes part in the cluster.
    var isActive: Bool { state == .running || state == .starting }

    /// Throws `.shutDown` unless the node is running.
    func checkRunning() throws(NodeError) {
        guard state == .running else { throw NodeError(.shutDown, "node \(name) is not running (\(state))") }
    }
}

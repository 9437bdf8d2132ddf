import DevtsRuntime
import Logging

/// How a node starts: where it listens, whom it joins, and its limits.
public struct NodeConfiguration: Sendable {
    /// The address to listen on (the node's cluster port). Port 0 picks a free port.
    public var listen: SocketAddress
    /// The address other nodes should use to reach this one, when it differs from `listen`
    /// (listening on 0.0.0.0, or behind NAT). Defaults to `listen` (with 127.0.0.1 for 0.0.0.0).
    public var advertise: SocketAddress?
    /// Cluster addresses to join through, tried in order. Empty: start a new cluster.
    public var join: [SocketAddress]
    /// The cluster's name; nodes of different clusters refuse each other.
    public var cluster: String
    /// This node's name, for people (members are told apart by id).
    public var name: String
    /// Fail to start, instead of starting a new cluster, when no join address answers.
    public var requireJoin: Bool
    /// The largest frame accepted from a peer, in bytes; a larger one closes that connection.
    public var maxFrameSize: Int
    /// How long to wait for each join address to answer.
    public var joinTimeout: Duration
    /// The default timeout of `request`.
    public var requestTimeout: Duration
    /// How many events an `events(named:)` stream holds for a consumer that falls behind before the
    /// node stops reading from its members (backpressure to the senders; nothing is dropped).
    /// Batch streams hold a 64th of it, in batches.
    public var streamBufferLimit: Int
    /// How many times to try to reconnect a lost member before reporting it failed.
    public var reconnectAttempts: Int
    /// The pause between reconnect attempts.
    public var reconnectInterval: Duration
    /// Where the node logs; at info it logs its id and cluster port, and each member that joins,
    /// leaves or fails.
    public var logger: Logger

    /// A configuration with sensible defaults: listen on 127.0.0.1 with a free port, cluster "devts".
    public init(
        listen: SocketAddress? = nil,
        advertise: SocketAddress? = nil,
        join: [SocketAddress] = [],
        cluster: String = "devts",
        name: String? = nil,
        requireJoin: Bool = false,
        maxFrameSize: Int = 16 * 1024 * 1024,
        joinTimeout: Duration = .seconds(2),
        requestTimeout: Duration = .seconds(5),
        streamBufferLimit: Int = 65_536,
        reconnectAttempts: Int = 3,
        reconnectInterval: Duration = .milliseconds(200),
        logger: Logger = Logger(label: "devts")
    ) {
        self.listen = listen ?? (try! SocketAddress(host: "127.0.0.1", port: 0))
        self.advertise = advertise
        self.join = join
        self.cluster = cluster
        self.name = name ?? ""
        self.requireJoin = requireJoin
        self.maxFrameSize = maxFrameSize
        self.joinTimeout = joinTimeout
        self.requestTimeout = requestTimeout
        self.streamBufferLimit = streamBufferLimit
        self.reconnectAttempts = reconnectAttempts
        self.reconnectInterval = reconnectInterval
        self.logger = logger
    }

    /// Throws when a setting is out of range.
    func validate() throws(NodeError) {
        guard !cluster.isEmpty, cluster.utf8.count <= 255 else {
            throw NodeError(.invalidConfiguration, "cluster name must be 1 to 255 bytes, got '\(cluster)'")
        }
        guard name.utf8.count <= 255 else {
            throw NodeError(.invalidConfiguration, "node name must be at most 255 bytes")
        }
        guard maxFrameSize >= 1024, maxFrameSize <= Int(UInt32.max) else {
            throw NodeError(.invalidConfiguration, "maxFrameSize must be 1 KiB to 4 GiB, got \(maxFrameSize)")
        }
        guard streamBufferLimit >= 2 else {
            throw NodeError(.invalidConfiguration, "streamBufferLimit must be at least 2, got \(streamBufferLimit)")
        }
        guard reconnectAttempts >= 0 else {
            throw NodeError(.invalidConfiguration, "reconnectAttempts must not be negative")
        }
        if requireJoin && join.isEmpty {
            throw NodeError(.invalidConfiguration, "requireJoin is set but no join address was given")
        }
    }
}

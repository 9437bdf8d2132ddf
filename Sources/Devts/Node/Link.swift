import DevtsRuntime

/// One TCP connection of a node, with what the handshake learned about the other end.
///
/// Confined to the node's loop (used only from the `Node` actor and its loop callbacks).
final class Link: @unchecked Sendable {
    enum Phase {
        /// Waiting for the other side's HELLO (accepted) or HELLO_ACK (dialled).
        case handshaking
        /// A cluster member: carries membership frames and events.
        case member
        /// A tool that asks one thing and goes.
        case client
    }

    let connection: TCPConnection
    /// True when this node opened the connection.
    let dialled: Bool
    var phase: Phase = .handshaking
    /// The other node, once the handshake told us.
    var remote: NodeInfo?
    /// A dialler waiting for the next handshake or member-list frame on this link.
    var waiter: CheckedContinuation<WireMessage, any Error>?
    /// Set when this node closes the link on purpose (superseded, after LEAVE, shutting down):
    /// losing it then is not a failure of the member.
    var closingOnPurpose = false
    /// Guards a dial or join step; closed when the step finishes.
    var deadline: LoopTimer?
    /// Not read because answering it filled a queue, or too many of its requests are pending.
    var throttled = false
    /// A task waits for the congested queues to drain before reading again.
    var waitingForDrain = false
    /// Requests from this link being answered by responders.
    var pendingResponders = 0
    /// Event names seen on this link, so that repeated names are not validated and allocated again.
    var names = NameCache()
    /// The sequence of the last broadcast delivered from the node at the other end (broadcasts
    /// travel only from their origin, over this link): no hashing per event. Loaded from and saved
    /// to `Node.lastSequence` when the link opens and closes.
    var lastSequence: UInt64 = 0

    init(connection: TCPConnection, dialled: Bool) {
        self.connection = connection
        self.dialled = dialled
    }

    var id: UInt64 { connection.id }

    /// Resumes the waiter, if any, with `result`.
    func resumeWaiter(_ result: Result<WireMessage, any Error>) {
        guard let waiter else { return }
        self.waiter = nil
        deadline?.close()
        deadline = nil
        waiter.resume(with: result)
    }
}

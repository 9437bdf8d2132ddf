import DevtsRuntime

extension Node {
    /// The largest frame accepted before a connection's handshake completes: a HELLO is small, and
    /// an unauthenticated peer must not make the node reserve `maxFrameSize` bytes.
    static let handshakeFrameLimit = 64 * 1024
    /// Requests from one link answered concurrently by responders; beyond this the link is not read
    /// until some finish.
    static let maxPendingResponders = 256

    /// Pauses or resumes reading `link` to match why it should not be read: its own throttle, or
    /// (for members) a full stream.
    func applyReadState(_ link: Link) {
        // A stopping node closes its links; and after its loop has closed, libuv must not be called.
        guard isActive, link.connection.isOpen else { return }
        if link.throttled || (inboundPaused && link.phase == .member) {
            link.connection.pauseReading()
        } else {
            link.connection.resumeReading()
        }
    }

    /// Stops reading from `link` while answering it has filled a queue — its own (a peer that sends
    /// requests or queries and does not read the answers), or for a tool's CLIENT_EMIT the members'
    /// — or while too many of its requests are still being answered. Reads again once that is over.
    /// So a peer cannot make this node queue memory without bound.
    func updateThrottle(_ link: Link) {
        guard isActive else { return }
        let congested = link.connection.isOverHighWaterMark
            || (link.phase == .client && memberLinks.values.contains { $0.connection.isOverHighWaterMark })
        let busy = link.pendingResponders >= Self.maxPendingResponders
        let throttle = link.connection.isOpen && (congested || busy)
        guard throttle != link.throttled else { return }
        link.throttled = throttle
        applyReadState(link)
        if throttle && congested && !link.waitingForDrain {
            link.waitingForDrain = true
            Task {
                try? await link.connection.waitUntilWritable()
                if link.phase == .client {
                    for member in memberLinks.values { try? await member.connection.waitUntilWritable() }
                }
                link.waitingForDrain = false
                link.throttled = false
                applyReadState(link)
                updateThrottle(link)
            }
        }
    }

    /// An accepted connection has until the join timeout to complete its handshake.
    func startHandshakeDeadline(_ link: Link) {
        link.deadline = loop.schedule(after: configuration.joinTimeout) { [unowned self] in
            self.assumeIsolated { node in
                link.deadline = nil
                guard link.phase == .handshaking, link.connection.isOpen else { return }
                node.protocolViolation(on: link, "no handshake within \(node.configuration.joinTimeout)")
            }
        }
    }

    /// The handshake completed: the connection may now carry frames up to the configured maximum.
    func handshakeCompleted(_ link: Link) {
        if link.deadline != nil && link.waiter == nil {
            link.deadline?.close()
            link.deadline = nil
        }
        link.connection.maxFrameSize = configuration.maxFrameSize
    }
}

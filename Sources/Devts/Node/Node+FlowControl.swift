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

    /// Stops reading from `link` while too many of its requests are being answered, or — for a
    /// tool's connection — while answering it has filled a queue: its own (queries whose answers it
    /// does not read) or, after a CLIENT_EMIT, a member's. Reads again once that is over. So a peer
    /// cannot make this node queue memory without bound.
    ///
    /// A member's link is never paused because this node's queue to it is full: this node's own
    /// broadcasts wait for that queue instead, and two members pausing each other would deadlock.
    /// Answers to a member wait for its queue in their responder task (see `receivedRequest`).
    func updateThrottle(_ link: Link) {
        guard isActive else { return }
        let congested = link.phase == .client
            && (link.connection.isOverHighWaterMark || memberLinks.values.contains { $0.connection.isOverHighWaterMark })
        let busy = link.pendingResponders >= Self.maxPendingResponders
        let throttle = link.connection.isOpen && (congested || busy)
        if throttle != link.throttled {
            link.throttled = throttle
            applyReadState(link)
        }
        if congested && !link.waitingForDrain {
            link.waitingForDrain = true
            Task {
                try? await link.connection.waitUntilWritable()
                for member in memberLinks.values { try? await member.connection.waitUntilWritable() }
                link.waitingForDrain = false
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

import DevtsRuntime
import Logging

extension Node {
    /// Joins through the first cluster address that answers, or starts a new cluster. The node
    /// listens already.
    func startUp() async throws {
        var failures: [String] = []
        for seed in configuration.join where seed != address && seed != listener?.address {
            do {
                try await join(through: seed)
                try checkStillStarting()
                bootstrapped = false
                state = .running
                logger.info(
                    "node \(id) started on cluster port \(address), joined cluster '\(configuration.cluster)' through \(seed) (\(view.count + 1) members)")
                return
            } catch {
                failures.append("\(seed): \(error)")
                logger.debug("join through \(seed) failed: \(error)")
            }
        }
        if configuration.requireJoin {
            throw NodeError(
                .joinFailed,
                "no cluster address answered (\(failures.isEmpty ? "none to try" : failures.joined(separator: "; ")))")
        }
        try checkStillStarting()
        bootstrapped = true
        state = .running
        logger.info("node \(id) started on cluster port \(address): no cluster address answered, started a new cluster '\(configuration.cluster)'")
    }

    /// Handshakes with `seed`, asks for the member list, and connects to every member on it.
    private func join(through seed: SocketAddress) async throws {
        let link = try await dial(seed, role: .member, timeout: configuration.joinTimeout)
        let list: [NodeInfo]
        do {
            send(.joinRequest, on: link)
            guard case .memberList(let answer) = try await awaitFrame(
                on: link, timeout: configuration.joinTimeout, doing: "join through \(seed)")
            else { throw NodeError(.rejected, "\(seed) answered the join with something else than a member list") }
            list = answer
        } catch {
            // The handshake made the seed a member; without a member list it is not one after all.
            link.closingOnPurpose = true
            link.connection.close()
            if let seedID = link.remote?.id { memberFailed(seedID) }
            throw error
        }
        for info in list where info.id != id {
            do {
                try await dialMember(info)
            } catch {
                // The member will hear of us through the others' announcements and dial us itself.
                logger.warning("could not connect to member \(info.name) (\(info.id.short)) at \(info.address): \(error)")
            }
        }
    }

    /// Throws `.shutDown` when the node was stopped while it was joining.
    private func checkStillStarting() throws(NodeError) {
        guard state == .starting else { throw NodeError(.shutDown, "node \(name) was stopped while starting") }
    }

    /// Connects to a member unless a connection to it exists or is being made, so that one side
    /// never opens two connections to the same member at once.
    ///
    /// - Returns: false when another node answered at the member's address (the member is gone).
    @discardableResult
    func dialMember(_ info: NodeInfo) async throws -> Bool {
        guard memberLinks[info.id] == nil, !dialling.contains(info.id) else { return true }
        let address = try SocketAddress(parsing: info.address)
        dialling.insert(info.id)
        defer { dialling.remove(info.id) }
        let link = try await dial(address, role: .member, timeout: configuration.joinTimeout)
        return link.remote?.id == info.id
    }

    /// A member handshake completed on `link` (either direction).
    func memberConnected(_ link: Link) {
        guard let remote = link.remote else { return }
        if let existing = memberLinks[remote.id], existing !== link {
            // Both sides dialled: keep the connection opened by the lower id, on both sides alike.
            let lower = min(id, remote.id)
            let opener = { (l: Link) in l.dialled ? self.id : remote.id }
            let keepNew = opener(link) == lower || opener(existing) != lower
            let loser = keepNew ? existing : link
            loser.closingOnPurpose = true
            loser.connection.closeWhenFlushed()
            if !keepNew { return }
        }
        if let previous = memberLinks[remote.id] {
            link.lastSequence = previous.lastSequence
        } else {
            link.lastSequence = lastSequence[remote.id] ?? 0
        }
        memberLinks[remote.id] = link
        applyReadState(link)
        reconnecting.removeValue(forKey: remote.id)?.close()
        expectedMembers.removeValue(forKey: remote.id)?.close()
        if let known = view[remote.id] {
            if known.status != .alive {
                // Broadcasts sent while it was unreachable never reached it: report it failed and
                // joined again, so that what is built on top (stores) resynchronizes.
                view[remote.id]?.status = .alive
                logger.info("member \(remote.name) (\(remote.id.short)) at \(remote.address) is reachable again")
                var failed = known
                failed.status = .failed
                publish(.init(kind: .failed, member: failed))
                publish(.init(kind: .joined, member: view[remote.id]!))
            }
            return
        }
        let member = Cluster.Member(id: remote.id, name: remote.name, address: remote.address, status: .alive)
        view[remote.id] = member
        logger.info("member joined: \(remote.name) (\(remote.id)) at \(remote.address)")
        publish(.init(kind: .joined, member: member))
        // Tell the other members, so that nodes joining at the same time through different members
        // still find each other.
        writer.reset()
        WireMessage.memberJoined(remote).encode(into: &writer)
        for (memberID, other) in memberLinks where memberID != remote.id {
            other.connection.write(frame: writer.bytes)
        }
    }

    /// A joiner asked for the member list: send it. (Its handshake already announced it to the
    /// other members.)
    func receivedJoinRequest(on link: Link) {
        guard let joiner = link.remote else { return }
        let list = [selfInfo] + view.values.filter { $0.status == .alive && $0.id != joiner.id }.map {
            NodeInfo(id: $0.id, incarnation: 0, name: $0.name, address: $0.address)
        }
        send(.memberList(list), on: link)
    }

    /// Another member announced a joiner; it will connect to us. If it has not within the join
    /// timeout, connect to it ourselves.
    func receivedMemberJoined(_ info: NodeInfo) {
        guard info.id != id, memberLinks[info.id] == nil, expectedMembers[info.id] == nil,
            SocketAddressText.isValid(info.address)
        else { return }
        expectedMembers[info.id] = loop.schedule(after: configuration.joinTimeout) { [unowned self] in
            self.assumeIsolated { node in
                node.expectedMembers.removeValue(forKey: info.id)
                guard node.state == .running, node.memberLinks[info.id] == nil else { return }
                Task { try? await node.dialMember(info) }
            }
        }
    }

    /// A member said it leaves: report it left at once and close its link.
    func receivedLeave(_ leaver: NodeID, on link: Link) {
        guard let remote = link.remote, remote.id == leaver else {
            return protocolViolation(on: link, "LEAVE for another node")
        }
        link.closingOnPurpose = true
        link.connection.close()
        if let current = memberLinks[leaver] {
            current.closingOnPurpose = true
            current.connection.close()
            memberLinks.removeValue(forKey: leaver)
        }
        reconnecting.removeValue(forKey: leaver)?.close()
        guard var member = view.removeValue(forKey: leaver) else { return }
        member.status = .left
        logger.info("member left: \(member.name) (\(member.id))")
        failRequests(to: leaver, NodeError(.memberUnavailable, "member \(member.name) left"))
        publish(.init(kind: .left, member: member))
    }

    /// A member's connection was lost: try to reconnect, and report it failed if that does not work.
    func memberLost(_ remote: NodeInfo) {
        guard view[remote.id] != nil else { return }
        view[remote.id]?.status = .unreachable
        logger.notice("lost the connection to \(remote.name) (\(remote.id.short)); reconnecting")
        reconnect(remote, attemptsLeft: configuration.reconnectAttempts)
    }

    private func reconnect(_ remote: NodeInfo, attemptsLeft: Int) {
        guard attemptsLeft > 0, SocketAddressText.isValid(remote.address) else {
            return memberFailed(remote.id)
        }
        reconnecting[remote.id]?.close()
        reconnecting[remote.id] = loop.schedule(after: configuration.reconnectInterval) { [unowned self] in
            self.assumeIsolated { node in
                node.reconnecting.removeValue(forKey: remote.id)
                guard node.isActive, node.view[remote.id] != nil, node.memberLinks[remote.id] == nil else { return }
                Task {
                    do {
                        if try await !node.dialMember(remote) && node.isActive {
                            // Another node answers at that address: ours is gone for good.
                            node.memberFailed(remote.id)
                        }
                    } catch {
                        if node.isActive && node.memberLinks[remote.id] == nil {
                            node.reconnect(remote, attemptsLeft: attemptsLeft - 1)
                        }
                    }
                }
            }
        }
    }

    func memberFailed(_ memberID: NodeID) {
        reconnecting.removeValue(forKey: memberID)?.close()
        guard memberLinks[memberID] == nil, var member = view.removeValue(forKey: memberID) else { return }
        member.status = .failed
        logger.info("member failed: \(member.name) (\(member.id)) at \(member.address)")
        failRequests(to: memberID, NodeError(.memberUnavailable, "member \(member.name) failed"))
        publish(.init(kind: .failed, member: member))
    }

    /// Membership changes seen by this node from now on: joined, left, failed.
    ///
    /// The sequence ends when the node stops.
    public func membershipChanges() -> AsyncStream<Cluster.MembershipChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: Cluster.MembershipChange.self)
        guard state == .running || state == .starting else {
            continuation.finish()
            return stream
        }
        nextStreamID += 1
        let streamID = nextStreamID
        changeStreams[streamID] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.removeChangeStream(streamID) }
        }
        return stream
    }

    private func removeChangeStream(_ streamID: UInt64) {
        changeStreams.removeValue(forKey: streamID)
    }

    func publish(_ change: Cluster.MembershipChange) {
        for continuation in changeStreams.values { continuation.yield(change) }
    }

    /// Leaves the cluster gracefully: the same as `shutdown()`.
    public nonisolated func leave() async throws {
        try await shutdown()
    }

    /// Stops: tells the others when `announce`, lets queued frames leave (for at most 2 seconds),
    /// closes every link, fails pending requests, ends every stream.
    func stop(announce: Bool) async {
        guard isActive else {
            // A stop under way: wait for it, so that the loop is not shut down under its leave.
            if state == .stopping { await withCheckedContinuation { stoppedWaiters.append($0) } }
            return
        }
        state = .stopping
        listener?.close()
        listener = nil
        for timer in reconnecting.values { timer.close() }
        reconnecting = [:]
        for timer in expectedMembers.values { timer.close() }
        expectedMembers = [:]
        if announce {
            writer.reset()
            WireMessage.leave(id).encode(into: &writer)
            for link in memberLinks.values { link.connection.write(frame: writer.bytes) }
            logger.info("node \(id) leaving the cluster")
        }
        for link in links.values {
            link.closingOnPurpose = true
            link.resumeWaiter(.failure(NodeError(.shutDown, "node \(name) is shutting down")))
            if announce { link.connection.closeWhenFlushed() } else { link.connection.close() }
        }
        failAllRequests(NodeError(.shutDown, "node \(name) shut down"))
        if !links.isEmpty {
            let deadline = loop.schedule(after: .seconds(2)) { [unowned self] in
                self.assumeIsolated { node in
                    for link in node.links.values { link.connection.close() }
                }
            }
            await withCheckedContinuation { stopWaiters.append($0) }
            deadline.close()
        }
        memberLinks = [:]
        for continuation in changeStreams.values { continuation.finish() }
        changeStreams = [:]
        finishEventStreams()
        state = .stopped
        let waiters = stoppedWaiters
        stoppedWaiters = []
        for waiter in waiters { waiter.resume() }
    }
}

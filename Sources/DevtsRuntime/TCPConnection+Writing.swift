import CLibUV

/// Which queue of a connection a frame joins.
public enum WriteLane: Sendable {
    /// Bulk traffic (events). Leaves in order, behind any control frames that are waiting.
    case data
    /// Small, urgent frames (membership, replies, probes). They leave before any data frame that
    /// has not yet been handed to the kernel, so they never wait behind a backlog of data.
    case control
}

/// Outgoing bytes gathered in one buffer of the write pool.
struct OutgoingBatch {
    var buffer: UnsafeMutableRawPointer
    var capacity: Int
    var length: Int
}

extension TCPConnection {
    /// Queues one frame: a 4-byte big-endian length, then `length` bytes that `body` writes directly
    /// into the outgoing batch (no intermediate copy).
    ///
    /// Frames queued during a loop pass leave together at the end of the pass, in batches of about
    /// 64 KiB; a full batch leaves at once. While the kernel does not take what was handed to it (a
    /// peer that does not read), at most one batch is with libuv and the rest waits here in full
    /// batches, so memory stays close to `queuedBytes`. On a closed connection the frame is dropped.
    /// Loop thread only.
    public func writeFrame(length: Int, lane: WriteLane = .data, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        loop.preconditionInLoop()
        precondition(length >= 0 && length <= Int(UInt32.max), "frame length \(length) does not fit the wire format")
        guard isOpen, !closeWhenDrained else { return }
        let dst = reserve(FrameLength.size + length, lane: lane)
        FrameLength.write(UInt32(length), to: dst)
        body(UnsafeMutableRawBufferPointer(start: dst + FrameLength.size, count: length))
        framesWritten += 1
        commit(FrameLength.size + length, lane: lane)
    }

    /// Queues one frame with `body` as its contents. Loop thread only.
    public func write(frame body: UnsafeRawBufferPointer, lane: WriteLane = .data) {
        writeFrame(length: body.count, lane: lane) { dst in
            if body.count > 0 { dst.baseAddress!.copyMemory(from: body.baseAddress!, byteCount: body.count) }
        }
    }

    /// Queues one frame with `body` as its contents. Loop thread only.
    public func write(frame body: [UInt8], lane: WriteLane = .data) {
        body.withUnsafeBytes { write(frame: $0, lane: lane) }
    }

    /// Queues one frame with `body` as its contents. Loop thread only.
    public func write(frame body: ArraySlice<UInt8>, lane: WriteLane = .data) {
        body.withUnsafeBytes { write(frame: $0, lane: lane) }
    }

    /// Queues bytes as they are, without a length prefix (for tests of malformed input, or
    /// already-framed bytes such as a received `FrameBatch.storage`). Loop thread only.
    public func writeRaw(_ bytes: UnsafeRawBufferPointer) {
        loop.preconditionInLoop()
        guard isOpen, !closeWhenDrained, bytes.count > 0 else { return }
        let dst = reserve(bytes.count, lane: .data)
        dst.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        commit(bytes.count, lane: .data)
    }

    /// Hands what is queued to libuv now instead of at the end of the loop pass (as much as the
    /// kernel takes; the rest follows as it drains). Loop thread only.
    public func flush() {
        flushScheduled = false
        pump()
    }

    /// Flushes what is queued and closes the connection once libuv has written all of it (a
    /// graceful close: the peer receives every frame queued before). Writes after this are dropped.
    /// Loop thread only.
    public func closeWhenFlushed() {
        loop.preconditionInLoop()
        guard isOpen else { return }
        flush()
        if queuedBytes == 0 {
            close()
        } else {
            closeWhenDrained = true
        }
    }

    /// Waits until `queuedBytes` is at or below `lowWaterMark`; returns at once when at or below
    /// `highWaterMark`. Call from an actor pinned to this connection's loop.
    ///
    /// - Throws: the `CloseReason` when the connection is or becomes closed.
    public func waitUntilWritable(isolation: isolated (any Actor)? = #isolation) async throws {
        loop.preconditionInLoop()
        if let closeReason { throw closeReason }
        if queuedBytes <= highWaterMark { return }
        try await withCheckedThrowingContinuation(isolation: isolation) { (cont: CheckedContinuation<Void, any Error>) in
            writableWaiters.append(cont)
        }
    }

    /// Whether writers should wait before queueing more.
    public var isOverHighWaterMark: Bool { queuedBytes > highWaterMark }

    /// How long bytes have waited here with no write completing: zero when nothing is queued. A
    /// peer that reads keeps this near zero; one that stopped reading makes it grow. Loop thread only.
    public var writeStall: Duration {
        guard queuedBytes > 0 else { return .zero }
        return .milliseconds(Int64(loop.nowMilliseconds &- writeProgressAt))
    }

    /// A pointer to `count` free bytes at the end of `lane`'s open batch, closing that batch first
    /// when it has no room.
    private func reserve(_ count: Int, lane: WriteLane) -> UnsafeMutableRawPointer {
        switch lane {
        case .data:
            if let open = batch, open.capacity - open.length < count { closeDataBatch() }
            if batch == nil { batch = newBatch(count) }
            return batch!.buffer + batch!.length
        case .control:
            if let open = controlBatch, open.capacity - open.length < count {
                heldControl.append(open)
                controlBatch = nil
            }
            if controlBatch == nil { controlBatch = newBatch(count) }
            return controlBatch!.buffer + controlBatch!.length
        }
    }

    private func newBatch(_ minimumCapacity: Int) -> OutgoingBatch {
        let (buffer, capacity) = loop.bufferPool.take(minimumCapacity: minimumCapacity)
        return OutgoingBatch(buffer: buffer, capacity: capacity, length: 0)
    }

    private func commit(_ count: Int, lane: WriteLane) {
        if queuedBytes == 0 { writeProgressAt = loop.nowMilliseconds }
        queuedBytes += count
        switch lane {
        case .data:
            batch!.length += count
            if batch!.length >= WriteBufferPool.bufferSize {
                closeDataBatch()
                pump()
                return
            }
        case .control:
            controlBatch!.length += count
        }
        if !flushScheduled {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    /// Moves the open data batch behind the held ones.
    private func closeDataBatch() {
        guard let open = batch else { return }
        batch = nil
        heldData.append(open)
    }

    /// Hands batches to libuv while libuv has nothing waiting for the kernel: control first, then
    /// data in order. A peer that does not read therefore never makes this node hand libuv more
    /// than one batch beyond what the kernel took.
    func pump() {
        while isOpen && uv_stream_get_write_queue_size(stream) == 0 {
            if !heldControl.isEmpty {
                submit(heldControl.removeFirst())
            } else if let open = controlBatch {
                controlBatch = nil
                submit(open)
            } else if !heldData.isEmpty {
                submit(heldData.removeFirst())
            } else if let open = batch {
                batch = nil
                submit(open)
            } else {
                return
            }
        }
    }

    private func submit(_ outgoing: OutgoingBatch) {
        let request = loop.bufferPool.takeRequest()
        request.initialize(to: PendingWrite(request: uv_write_t(), buffer: outgoing.buffer,
                                            capacity: outgoing.capacity, length: outgoing.length))
        request.pointee.request.data = Unmanaged.passUnretained(self).toOpaque()
        var descriptor = uv_buf_init(outgoing.buffer.assumingMemoryBound(to: CChar.self), UInt32(outgoing.length))
        // libuv calls every write callback (with UV_ECANCELED once closing) before the close callback,
        // and the loop keeps this connection registered until then: the unretained pointer is safe.
        let rc = withUnsafeMutablePointer(to: &request.pointee.request) { uvRequest in
            uv_write(uvRequest, stream, &descriptor, 1, onWrite)
        }
        if rc < 0 {
            request.deinitialize(count: 1)
            loop.bufferPool.giveRequest(request)
            loop.bufferPool.give(outgoing.buffer, capacity: outgoing.capacity)
            queuedBytes -= outgoing.length
            close(reason: .error(UVError(code: rc, operation: "write")))
        }
    }

    /// Drops every batch not yet handed to libuv (the connection is closing).
    func dropUnsentBatches() {
        var unsent = heldControl + heldData
        heldControl = []
        heldData = []
        if let open = batch { unsent.append(open) }
        if let open = controlBatch { unsent.append(open) }
        batch = nil
        controlBatch = nil
        for outgoing in unsent {
            queuedBytes -= outgoing.length
            loop.bufferPool.give(outgoing.buffer, capacity: outgoing.capacity)
        }
    }

    fileprivate func didWrite(_ length: Int, status: Int32) {
        queuedBytes -= length
        writeProgressAt = loop.nowMilliseconds
        if status < 0 && status != UV_ECANCELED.rawValue {
            close(reason: .error(UVError(code: status, operation: "write")))
        }
        pump()
        if closeWhenDrained && queuedBytes == 0 {
            close()
            return
        }
        if queuedBytes <= lowWaterMark && !writableWaiters.isEmpty {
            let waiters = writableWaiters
            writableWaiters = []
            for waiter in waiters { waiter.resume() }
        }
    }
}

/// A `uv_write_t` with the batch it carries; the request is the first field, so a pointer to it is
/// a pointer to the whole.
struct PendingWrite {
    var request: uv_write_t
    let buffer: UnsafeMutableRawPointer
    let capacity: Int
    let length: Int
}

private func onWrite(_ request: UnsafeMutablePointer<uv_write_t>?, _ status: Int32) {
    let pending = UnsafeMutableRawPointer(request!).assumingMemoryBound(to: PendingWrite.self)
    let connection = TCPConnection.from(request!.pointee.data)
    let (buffer, capacity, length) = (pending.pointee.buffer, pending.pointee.capacity, pending.pointee.length)
    pending.deinitialize(count: 1)
    connection.loop.bufferPool.giveRequest(pending)
    connection.loop.bufferPool.give(buffer, capacity: capacity)
    connection.didWrite(length, status: status)
}

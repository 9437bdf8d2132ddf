import CLibUV

extension TCPConnection {
    /// Queues one frame: a 4-byte big-endian length, then `length` bytes that `body` writes directly
    /// into the outgoing batch (no intermediate copy).
    ///
    /// Frames queued during a loop pass leave together at the end of the pass, in batches of about
    /// 64 KiB; a full batch leaves at once. On a closed connection the frame is dropped. Loop thread
    /// only.
    public func writeFrame(length: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        loop.preconditionInLoop()
        precondition(length >= 0 && length <= Int(UInt32.max), "frame length \(length) does not fit the wire format")
        guard isOpen, !closeWhenDrained else { return }
        let dst = reserve(FrameLength.size + length)
        FrameLength.write(UInt32(length), to: dst)
        body(UnsafeMutableRawBufferPointer(start: dst + FrameLength.size, count: length))
        framesWritten += 1
        commit(FrameLength.size + length)
    }

    /// Queues one frame with `body` as its contents. Loop thread only.
    public func write(frame body: UnsafeRawBufferPointer) {
        writeFrame(length: body.count) { dst in
            if body.count > 0 { dst.baseAddress!.copyMemory(from: body.baseAddress!, byteCount: body.count) }
        }
    }

    /// Queues one frame with `body` as its contents. Loop thread only.
    public func write(frame body: [UInt8]) {
        body.withUnsafeBytes { write(frame: $0) }
    }

    /// Queues one frame with `body` as its contents. Loop thread only.
    public func write(frame body: ArraySlice<UInt8>) {
        body.withUnsafeBytes { write(frame: $0) }
    }

    /// Queues bytes as they are, without a length prefix (for tests of malformed input, or
    /// already-framed bytes such as a received `FrameBatch.storage`). Loop thread only.
    public func writeRaw(_ bytes: UnsafeRawBufferPointer) {
        loop.preconditionInLoop()
        guard isOpen, !closeWhenDrained, bytes.count > 0 else { return }
        let dst = reserve(bytes.count)
        dst.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        commit(bytes.count)
    }

    /// Hands everything queued to libuv now instead of at the end of the loop pass. Loop thread only.
    public func flush() {
        flushScheduled = false
        if batchLength > 0 { submitBatch() }
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

    /// A pointer to `count` free bytes at the end of the current batch, submitting the batch first
    /// when it has no room.
    private func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if batch != nil && batchCapacity - batchLength < count { submitBatch() }
        if batch == nil {
            let (buffer, capacity) = loop.bufferPool.take(minimumCapacity: count)
            batch = buffer
            batchCapacity = capacity
            batchLength = 0
        }
        return batch! + batchLength
    }

    private func commit(_ count: Int) {
        batchLength += count
        queuedBytes += count
        if batchLength >= WriteBufferPool.bufferSize {
            submitBatch()
        } else if !flushScheduled {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    private func submitBatch() {
        guard let buffer = batch else { return }
        let length = batchLength
        let capacity = batchCapacity
        batch = nil
        batchLength = 0
        let request = loop.bufferPool.takeRequest()
        request.initialize(to: PendingWrite(request: uv_write_t(), buffer: buffer, capacity: capacity, length: length))
        request.pointee.request.data = Unmanaged.passUnretained(self).toOpaque()
        var descriptor = uv_buf_init(buffer.assumingMemoryBound(to: CChar.self), UInt32(length))
        // libuv calls every write callback (with UV_ECANCELED once closing) before the close callback,
        // and the loop keeps this connection registered until then: the unretained pointer is safe.
        let rc = withUnsafeMutablePointer(to: &request.pointee.request) { uvRequest in
            uv_write(uvRequest, stream, &descriptor, 1, onWrite)
        }
        if rc < 0 {
            request.deinitialize(count: 1)
            loop.bufferPool.giveRequest(request)
            loop.bufferPool.give(buffer, capacity: capacity)
            queuedBytes -= length
            close(reason: .error(UVError(code: rc, operation: "write")))
        }
    }

    fileprivate func didWrite(_ length: Int, status: Int32) {
        queuedBytes -= length
        if status < 0 && status != UV_ECANCELED.rawValue {
            close(reason: .error(UVError(code: status, operation: "write")))
        }
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

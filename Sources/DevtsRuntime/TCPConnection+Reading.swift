import CLibUV
import Glibc

extension TCPConnection {
    /// Bytes asked of the kernel per read, at least.
    static let readChunk = 64 * 1024
    /// A read buffer larger than this is given back once it empties (after a very large frame).
    static let readBufferKeep = 1024 * 1024

    /// Starts reading: each read's whole frames reach `onFrames` as one batch, on the loop thread.
    ///
    /// `onClose` runs once, when the connection closes for any reason. A connection that is
    /// already closed calls `onClose` at once. Loop thread only; call it once.
    ///
    /// libuv: `uv_read_start`.
    public func startReading(
        onFrames: @escaping (FrameBatch) -> Void,
        onClose: @escaping (CloseReason) -> Void
    ) {
        loop.preconditionInLoop()
        precondition(self.onFrames == nil, "TCPConnection \(id) is already reading")
        if let closeReason {
            onClose(closeReason)
            return
        }
        self.onFrames = onFrames
        self.onClose = onClose
        let rc = uv_read_start(stream, onAlloc, onRead)
        if rc < 0 { close(reason: .error(UVError(code: rc, operation: "uv_read_start"))) }
    }

    /// Starts reading and returns the frames as an asynchronous sequence of batches, one per read.
    ///
    /// The sequence ends when the connection closes normally (locally or by the peer), and throws
    /// the `CloseReason` otherwise. Loop thread only; call it once, instead of `startReading`.
    public func inbound() -> AsyncThrowingStream<FrameBatch, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: FrameBatch.self)
        startReading(
            onFrames: { continuation.yield($0) },
            onClose: { reason in
                switch reason {
                case .local, .peerClosed: continuation.finish()
                default: continuation.finish(throwing: reason)
                }
            }
        )
        return stream
    }

    /// Stops reading until `resumeReading()`: incoming bytes wait in the kernel, and TCP's flow
    /// control then slows the peer down (its writes queue up, and its high-water mark makes it wait).
    /// Nothing is lost. Does nothing when not reading, already paused, or closed. Loop thread only.
    ///
    /// libuv: `uv_read_stop`.
    public func pauseReading() {
        loop.preconditionInLoop()
        guard isOpen, onFrames != nil, !isReadingPaused else { return }
        isReadingPaused = true
        uv_read_stop(stream)
    }

    /// Reads again after `pauseReading()`. Loop thread only.
    public func resumeReading() {
        loop.preconditionInLoop()
        guard isOpen, isReadingPaused else { return }
        isReadingPaused = false
        let rc = uv_read_start(stream, onAlloc, onRead)
        if rc < 0 { close(reason: .error(UVError(code: rc, operation: "uv_read_start"))) }
    }

    /// Bytes received and not yet delivered (the start of a frame still arriving). Loop thread only.
    public var bufferedReadBytes: Int { readEnd - readStart }

    /// The size of the read buffer now allocated. Loop thread only.
    public var readBufferCapacity: Int { readCapacity }

    /// Room for the next read: at least `readChunk` bytes; for a frame whose length is known, room
    /// for as much of its rest as has already arrived of it (never more than `maxFrameSize` + 4,
    /// which the parser has already checked).
    fileprivate func readSpace() -> (UnsafeMutableRawPointer, Int) {
        if readStart == readEnd {
            readStart = 0
            readEnd = 0
            if readCapacity > Self.readBufferKeep {
                readBuffer?.deallocate()
                readBuffer = nil
                readCapacity = 0
            }
        }
        var needed = Self.readChunk
        let buffered = readEnd - readStart
        if buffered >= FrameLength.size {
            // Room for the rest of a large frame grows with what has arrived of it (at most doubling
            // per read), so a peer that only announces a large frame makes this node reserve nothing.
            let length = Int(FrameLength.read(readBuffer! + readStart))
            let rest = FrameLength.size + length - buffered
            needed = max(needed, min(rest, buffered))
        }
        if readCapacity - readEnd < needed {
            if readStart > 0 {
                memmove(readBuffer!, readBuffer! + readStart, buffered)
                readStart = 0
                readEnd = buffered
            }
            if readCapacity - readEnd < needed {
                let capacity = max(readEnd + needed, 2 * Self.readChunk)
                let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
                if let old = readBuffer {
                    grown.copyMemory(from: old, byteCount: readEnd)
                    old.deallocate()
                }
                readBuffer = grown
                readCapacity = capacity
            }
        }
        return (readBuffer! + readEnd, readCapacity - readEnd)
    }

    /// Takes `count` new bytes into the buffer and delivers every whole frame now in it.
    fileprivate func didRead(_ count: Int) {
        readEnd += count
        let base = readBuffer!
        var offset = readStart
        var frames = 0
        var tooLarge: Int?
        while readEnd - offset >= FrameLength.size {
            let length = Int(FrameLength.read(base + offset))
            if length > maxFrameSize {
                tooLarge = length
                break
            }
            guard readEnd - offset - FrameLength.size >= length else { break }
            offset += FrameLength.size + length
            frames += 1
        }
        // The whole frames before an oversized header are delivered first, so that what the reader
        // gets does not depend on how TCP split the stream into reads.
        defer {
            if let tooLarge { close(reason: .frameTooLarge(length: tooLarge, maximum: maxFrameSize)) }
        }
        guard frames > 0 else { return }
        let start = readStart
        let bytes = [UInt8](unsafeUninitializedCapacity: offset - start) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(
                from: UnsafeRawBufferPointer(start: base + start, count: offset - start))
            initialized = offset - start
        }
        readStart = offset
        framesRead += frames
        onFrames?(FrameBatch(storage: bytes, count: frames))
    }

    fileprivate func didFailRead(_ status: Int) {
        if status == Int(UV_EOF.rawValue) {
            close(reason: .peerClosed)
        } else {
            close(reason: .error(UVError(code: Int32(status), operation: "read")))
        }
    }
}

private func onAlloc(_ handle: UnsafeMutablePointer<uv_handle_t>?, _ suggested: Int, _ buf: UnsafeMutablePointer<uv_buf_t>?) {
    let connection = TCPConnection.from(handle!.pointee.data)
    let (pointer, size) = connection.readSpace()
    buf!.pointee = uv_buf_init(pointer.assumingMemoryBound(to: CChar.self), UInt32(min(size, Int(UInt32.max))))
}

private func onRead(_ stream: UnsafeMutablePointer<uv_stream_t>?, _ nread: Int, _ buf: UnsafePointer<uv_buf_t>?) {
    let connection = TCPConnection.from(stream!.pointee.data)
    if nread > 0 {
        connection.didRead(nread)
    } else if nread < 0 {
        connection.didFailRead(nread)
    }
}

import CLibUV

/// A TCP connection carrying length-prefixed frames, owned by one event loop.
///
/// Reading: `startReading(onFrames:onClose:)` delivers each read's whole frames as one `FrameBatch`
/// on the loop thread; `inbound()` offers the same as an `AsyncSequence`. A frame longer than
/// `maxFrameSize` closes the connection (with `CloseReason.frameTooLarge`) before anything is
/// allocated for it.
///
/// Writing: `write(frame:)` queues a frame; frames queued during one loop pass leave in as few
/// `uv_write` calls as possible at the end of the pass. `queuedBytes` counts what is queued or in
/// flight; above `highWaterMark`, callers should `waitUntilWritable()`.
///
/// Thread safety: loop thread only (from an actor pinned to the loop, or a libuv callback), except
/// `loop` and `id`. Callbacks run on the loop thread and never concurrently.
///
/// libuv: `uv_tcp_t`, `uv_read_start`, `uv_write`, `uv_close`.
public final class TCPConnection: @unchecked Sendable, LoopResource {
    /// How a connection ended.
    public enum CloseReason: Error, Sendable, Equatable, CustomStringConvertible {
        /// `close()` was called on this side.
        case local
        /// The peer closed its side (end of stream).
        case peerClosed
        /// A frame announced a length over the maximum.
        case frameTooLarge(length: Int, maximum: Int)
        /// libuv reported an error reading or writing.
        case error(UVError)

        public var description: String {
            switch self {
            case .local: "closed locally"
            case .peerClosed: "closed by the peer"
            case .frameTooLarge(let length, let maximum): "frame of \(length) bytes exceeds the maximum of \(maximum)"
            case .error(let error): error.description
            }
        }
    }

    /// The loop this connection lives on.
    public let loop: EventLoop
    /// A process-unique number for logs and maps.
    public let id: UInt64
    /// The largest frame body accepted from the peer, in bytes. May be changed while reading (for
    /// example, raised once a handshake completes); it applies to the next frame header parsed.
    @exclusivity(unchecked) public var maxFrameSize: Int
    // The state below is confined to the loop thread (checked by `preconditionInLoop`), so Swift's
    // dynamic exclusivity checks are pure cost here: they were half the instructions per frame.
    /// Above this many queued bytes, writers should wait (`waitUntilWritable()`).
    @exclusivity(unchecked) public var highWaterMark: Int = 8 * 1024 * 1024
    /// Waiting writers resume when the queue drains to this many bytes.
    @exclusivity(unchecked) public var lowWaterMark: Int = 2 * 1024 * 1024

    let handle: UnsafeMutablePointer<uv_tcp_t>
    var stream: UnsafeMutablePointer<uv_stream_t> { clibuv_tcp_as_stream(handle) }
    /// Why the connection closed; nil while it is open.
    @exclusivity(unchecked) public internal(set) var closeReason: CloseReason?
    /// True until `close()` or an error closes the connection.
    public var isOpen: Bool { closeReason == nil }
    /// Set by libuv's close callback; only then may the handle's memory be freed.
    @exclusivity(unchecked) var handleClosed = false

    // Reading state.
    @exclusivity(unchecked) var onFrames: ((FrameBatch) -> Void)?
    @exclusivity(unchecked) var onClose: ((CloseReason) -> Void)?
    @exclusivity(unchecked) var readBuffer: UnsafeMutableRawPointer?
    @exclusivity(unchecked) var readCapacity = 0
    @exclusivity(unchecked) var readStart = 0
    @exclusivity(unchecked) var readEnd = 0
    /// Set by `pauseReading()`, cleared by `resumeReading()`.
    @exclusivity(unchecked) public internal(set) var isReadingPaused = false

    // Writing state.
    /// The data batch frames are being added to.
    @exclusivity(unchecked) var batch: OutgoingBatch?
    /// Full data batches waiting for libuv to take them (the peer is slow to read).
    @exclusivity(unchecked) var heldData: [OutgoingBatch] = []
    /// The control batch frames are being added to, and full ones waiting.
    @exclusivity(unchecked) var controlBatch: OutgoingBatch?
    @exclusivity(unchecked) var heldControl: [OutgoingBatch] = []
    /// Loop time (ms) of the last write completion, or of the moment the queue stopped being empty.
    @exclusivity(unchecked) var writeProgressAt: UInt64 = 0
    @exclusivity(unchecked) var flushScheduled = false
    /// Bytes queued or in flight: written by `write(frame:)` and not yet confirmed by libuv.
    @exclusivity(unchecked) public internal(set) var queuedBytes = 0
    @exclusivity(unchecked) var writableWaiters: [CheckedContinuation<Void, any Error>] = []
    /// Set by `closeWhenFlushed()`: close once every queued byte has been written.
    @exclusivity(unchecked) var closeWhenDrained = false
    /// Frames written since the connection opened.
    @exclusivity(unchecked) public internal(set) var framesWritten = 0
    /// Frames received since the connection opened.
    @exclusivity(unchecked) public internal(set) var framesRead = 0

    nonisolated(unsafe) private static var nextID: UInt64 = 0
    private static let idLock = Lock()

    /// Creates an unconnected handle on `loop`. Loop thread only.
    init(loop: EventLoop, maxFrameSize: Int) throws(UVError) {
        loop.preconditionInLoop()
        self.loop = loop
        self.maxFrameSize = maxFrameSize
        self.id = Self.idLock.withLock {
            Self.nextID += 1
            return Self.nextID
        }
        handle = .allocate(capacity: 1)
        let rc = uv_tcp_init(loop.uvLoop, handle)
        guard rc == 0 else {
            handleClosed = true
            closeReason = .error(UVError(code: rc))
            throw UVError(code: rc, operation: "uv_tcp_init")
        }
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        loop.register(self)
        uv_tcp_nodelay(handle, 1)
    }

    deinit {
        precondition(handleClosed, "leak of open TCPConnection \(id): call close()")
        handle.deallocate()
        readBuffer?.deallocate()
    }

    @inline(__always)
    static func from(_ data: UnsafeMutableRawPointer?) -> TCPConnection {
        Unmanaged<TCPConnection>.fromOpaque(data!).takeUnretainedValue()
    }

    /// The local address of the socket, when it has one.
    public var localAddress: SocketAddress? { SocketAddress(of: handle, uv_tcp_getsockname) }

    /// The peer's address, when connected.
    public var remoteAddress: SocketAddress? { SocketAddress(of: handle, uv_tcp_getpeername) }

    // MARK: Connecting

    /// Connects to `address`; `completion` runs on the loop thread with the open connection or the
    /// error. Loop thread only.
    ///
    /// - Parameter timeout: gives up after this long with `UVError.timedOut` (an address that drops
    ///   packets would otherwise take the kernel's connect timeout, minutes). Nil waits for the kernel.
    ///
    /// libuv: `uv_tcp_connect`.
    public static func connect(
        on loop: EventLoop,
        to address: SocketAddress,
        maxFrameSize: Int = 16 * 1024 * 1024,
        timeout: Duration? = nil,
        completion: @escaping (Result<TCPConnection, UVError>) -> Void
    ) {
        let connection: TCPConnection
        do {
            connection = try TCPConnection(loop: loop, maxFrameSize: maxFrameSize)
        } catch {
            completion(.failure(error))
            return
        }
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        let context = ConnectContext(connection: connection, address: address, completion: completion)
        request.pointee.data = Unmanaged.passRetained(context).toOpaque()
        let rc = address.withSockaddr { uv_tcp_connect(request, connection.handle, $0, onConnect) }
        if rc < 0 {
            // libuv will not call the callback: release its context here.
            Unmanaged<ConnectContext>.fromOpaque(request.pointee.data).release()
            request.deallocate()
            connection.close()
            completion(.failure(UVError(code: rc, operation: "connect to \(address)")))
            return
        }
        if let timeout {
            // Closing the handle makes libuv call onConnect with UV_ECANCELED, which reports the timeout.
            context.timer = loop.schedule(after: timeout) { [unowned context] in
                context.timer = nil
                context.timedOut = true
                connection.close(reason: .error(UVError(code: UV_ETIMEDOUT.rawValue, operation: "connect to \(address)")))
            }
        }
    }

    /// Connects to `address` from any context and returns the open connection.
    ///
    /// - Throws: `UVError` (e.g. `.connectionRefused`, or `.timedOut` after `timeout`) when the
    ///   connection cannot be made.
    public static func connect(
        on loop: EventLoop,
        to address: SocketAddress,
        maxFrameSize: Int = 16 * 1024 * 1024,
        timeout: Duration? = nil
    ) async throws -> TCPConnection {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<TCPConnection, any Error>) in
            let accepted = loop.execute {
                connect(on: loop, to: address, maxFrameSize: maxFrameSize, timeout: timeout) {
                    cont.resume(with: $0.mapError { $0 })
                }
            }
            if !accepted { cont.resume(throwing: EventLoopError.shutDown(loop.name)) }
        }
    }

    // MARK: Closing

    /// Closes the connection: queued writes not yet handed to the kernel are dropped, reading stops,
    /// and `onClose` runs with `.local`. Closing twice is harmless. Loop thread only.
    public func close() {
        close(reason: .local)
    }

    func close(reason: CloseReason) {
        loop.preconditionInLoop()
        guard closeReason == nil else { return }
        closeReason = reason
        dropUnsentBatches()
        uv_close(clibuv_tcp_as_handle(handle)) { handle in
            let connection = TCPConnection.from(handle!.pointee.data)
            connection.didClose()
        }
        let waiters = writableWaiters
        writableWaiters = []
        for waiter in waiters { waiter.resume(throwing: reason) }
        let onClose = self.onClose
        self.onClose = nil
        onFrames = nil
        onClose?(reason)
    }

    private func didClose() {
        handleClosed = true
        loop.unregister(self)
    }

    func closeForShutdown() { close(reason: .local) }
}

private final class ConnectContext {
    let connection: TCPConnection
    let address: SocketAddress
    let completion: (Result<TCPConnection, UVError>) -> Void
    var timer: LoopTimer?
    var timedOut = false
    init(connection: TCPConnection, address: SocketAddress, completion: @escaping (Result<TCPConnection, UVError>) -> Void) {
        self.connection = connection
        self.address = address
        self.completion = completion
    }
}

private func onConnect(_ request: UnsafeMutablePointer<uv_connect_t>?, _ status: Int32) {
    let context = Unmanaged<ConnectContext>.fromOpaque(request!.pointee.data).takeRetainedValue()
    request!.deallocate()
    context.timer?.close()
    context.timer = nil
    if context.timedOut {
        context.completion(.failure(UVError(code: UV_ETIMEDOUT.rawValue, operation: "connect to \(context.address)")))
    } else if status < 0 {
        context.connection.close(reason: .error(UVError(code: status, operation: "connect to \(context.address)")))
        context.completion(.failure(UVError(code: status, operation: "connect to \(context.address)")))
    } else if context.connection.closeReason != nil {
        context.completion(.failure(UVError(code: UV_ECANCELED.rawValue, operation: "connect to \(context.address)")))
    } else {
        context.completion(.success(context.connection))
    }
}

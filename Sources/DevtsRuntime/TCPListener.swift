import CLibUV

/// A listening TCP socket that hands each accepted connection to a callback.
///
/// Thread safety: loop thread only, except `loop` and `address`. The accept callback runs on the
/// loop thread.
///
/// libuv: `uv_tcp_bind`, `uv_listen`, `uv_accept`.
public final class TCPListener: @unchecked Sendable, LoopResource {
    /// The loop this listener lives on.
    public let loop: EventLoop
    /// The address it is bound to, with the port the OS chose when 0 was asked for.
    public private(set) var address: SocketAddress
    /// The largest frame body accepted connections take from their peers.
    public let maxFrameSize: Int

    private let handle: UnsafeMutablePointer<uv_tcp_t>
    private var onAccept: ((TCPConnection) -> Void)?
    private var closing = false
    private var handleClosed = false
    /// Connections that failed to be accepted (each logged nowhere else: count them).
    public private(set) var acceptErrors = 0

    /// Binds to `address` and starts listening; `onAccept` receives each new connection, already
    /// open and not yet reading. Loop thread only.
    ///
    /// - Throws: `UVError` when binding or listening fails (e.g. `.addressInUse`).
    public init(
        on loop: EventLoop,
        address: SocketAddress,
        backlog: Int32 = 1024,
        maxFrameSize: Int = 16 * 1024 * 1024,
        onAccept: @escaping (TCPConnection) -> Void
    ) throws(UVError) {
        loop.preconditionInLoop()
        self.loop = loop
        self.address = address
        self.maxFrameSize = maxFrameSize
        self.onAccept = onAccept
        handle = .allocate(capacity: 1)
        let rc = uv_tcp_init(loop.uvLoop, handle)
        guard rc == 0 else {
            handleClosed = true
            throw UVError(code: rc, operation: "uv_tcp_init")
        }
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        loop.register(self)
        do {
            try UVError.check(address.withSockaddr { uv_tcp_bind(handle, $0, 0) }, "bind to \(address)")
            try UVError.check(
                uv_listen(clibuv_tcp_as_stream(handle), backlog) { server, status in
                    TCPListener.from(server!.pointee.data).accept(status: status)
                },
                "listen on \(address)"
            )
        } catch {
            close()
            throw error
        }
        if let bound = SocketAddress(of: handle, uv_tcp_getsockname) { self.address = bound }
    }

    deinit {
        precondition(handleClosed, "leak of open TCPListener on \(address): call close()")
        handle.deallocate()
    }

    /// Starts a listener from any context; `onAccept` runs on the loop thread.
    ///
    /// - Throws: `UVError` when binding or listening fails.
    public static func listen(
        on loop: EventLoop,
        address: SocketAddress,
        backlog: Int32 = 1024,
        maxFrameSize: Int = 16 * 1024 * 1024,
        onAccept: @escaping @Sendable (TCPConnection) -> Void
    ) async throws -> TCPListener {
        try await loop.submit {
            try TCPListener(on: loop, address: address, backlog: backlog, maxFrameSize: maxFrameSize, onAccept: onAccept)
        }
    }

    static func from(_ data: UnsafeMutableRawPointer?) -> TCPListener {
        Unmanaged<TCPListener>.fromOpaque(data!).takeUnretainedValue()
    }

    /// Whether the listener still accepts connections.
    public var isOpen: Bool { !closing }

    /// Stops listening and closes the socket; connections already accepted stay open. Closing twice
    /// is harmless. Loop thread only.
    public func close() {
        loop.preconditionInLoop()
        guard !closing else { return }
        closing = true
        onAccept = nil
        uv_close(clibuv_tcp_as_handle(handle)) { handle in
            let listener = TCPListener.from(handle!.pointee.data)
            listener.handleClosed = true
            listener.loop.unregister(listener)
        }
    }

    func closeForShutdown() { close() }

    private func accept(status: Int32) {
        guard status == 0, !closing else {
            acceptErrors += 1
            return
        }
        let connection: TCPConnection
        do {
            connection = try TCPConnection(loop: loop, maxFrameSize: maxFrameSize)
        } catch {
            acceptErrors += 1
            return
        }
        let rc = uv_accept(clibuv_tcp_as_stream(handle), connection.stream)
        guard rc == 0 else {
            acceptErrors += 1
            connection.close()
            return
        }
        onAccept?(connection)
    }
}

import CLibUV

/// A timer on an event loop: fires once after a delay, or repeatedly.
///
/// Thread safety: loop thread only. The callback runs on the loop thread.
///
/// libuv: `uv_timer_t`, `uv_timer_start`, `uv_timer_stop`.
public final class LoopTimer: @unchecked Sendable, LoopResource {
    /// The loop this timer lives on.
    public let loop: EventLoop
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private var callback: (() -> Void)?
    private var closing = false
    private var handleClosed = false

    /// Creates a stopped timer. Loop thread only.
    public init(on loop: EventLoop) {
        loop.preconditionInLoop()
        self.loop = loop
        handle = .allocate(capacity: 1)
        // uv_timer_init cannot fail for a valid loop.
        uv_timer_init(loop.uvLoop, handle)
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        loop.register(self)
    }

    deinit {
        precondition(handleClosed, "leak of open LoopTimer: call close()")
        handle.deallocate()
    }

    /// Starts (or restarts) the timer: `callback` runs after `delay`, then every `interval` if given.
    public func start(after delay: Duration, repeating interval: Duration? = nil, _ callback: @escaping () -> Void) {
        loop.preconditionInLoop()
        precondition(!closing, "LoopTimer started after close()")
        self.callback = callback
        uv_timer_start(handle, { timer in
            LoopTimer.from(timer!.pointee.data).fire()
        }, Self.milliseconds(delay), interval.map(Self.milliseconds) ?? 0)
    }

    /// Stops the timer; it may be started again.
    public func stop() {
        loop.preconditionInLoop()
        uv_timer_stop(handle)
    }

    /// Stops and closes the timer. Closing twice is harmless.
    public func close() {
        loop.preconditionInLoop()
        guard !closing else { return }
        closing = true
        callback = nil
        uv_close(clibuv_timer_as_handle(handle)) { handle in
            let timer = LoopTimer.from(handle!.pointee.data)
            timer.handleClosed = true
            timer.loop.unregister(timer)
        }
    }

    func closeForShutdown() { close() }

    private func fire() {
        callback?()
    }

    private static func from(_ data: UnsafeMutableRawPointer?) -> LoopTimer {
        Unmanaged<LoopTimer>.fromOpaque(data!).takeUnretainedValue()
    }

    private static func milliseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        // Saturates: a duration of centuries means "never", not a crash.
        let (milliseconds, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1000)
        return overflow ? UInt64.max : milliseconds &+ UInt64(attoseconds / 1_000_000_000_000_000)
    }
}

extension EventLoop {
    /// Runs `body` once on the loop thread after `delay`; the returned timer may be closed to cancel.
    /// Loop thread only.
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping () -> Void) -> LoopTimer {
        let timer = LoopTimer(on: self)
        timer.start(after: delay) { [unowned timer] in
            timer.close()
            body()
        }
        return timer
    }
}

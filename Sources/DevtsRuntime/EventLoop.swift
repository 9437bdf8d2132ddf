import CLibUV
import Glibc

/// An event loop: one `uv_loop_t` running on a thread of its own.
///
/// The loop is also a Swift `SerialExecutor` (see `EventLoop+SerialExecutor.swift`): an actor whose
/// `unownedExecutor` is this loop runs on the loop thread and may call libuv directly.
///
/// Thread safety: `execute(_:)`, `submit(_:)`, `enqueue(_:)`, `isInLoopThread` and `shutdown()` may be
/// called from any thread. Everything else (handles, connections, timers) is confined to the loop
/// thread; callbacks run there, one at a time, never concurrently.
///
/// libuv: `uv_loop_init`, `uv_run`, `uv_async_send`, `uv_loop_close`.
public final class EventLoop: @unchecked Sendable {
    /// A name for logs and the thread.
    public let name: String

    let uvLoop: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let endOfPass: UnsafeMutablePointer<uv_check_t>
    // Written once before the thread starts, then only read: no exclusivity checks needed.
    @exclusivity(unchecked) private var thread: pthread_t = pthread_t()

    // Guarded by `lock`.
    private let lock = Lock()
    private var pendingJobs: [LoopJob] = []
    private var spareJobs: [LoopJob] = []
    private var state: LifecycleState = .running
    private var acceptingJobs = true
    private var lateJobs: [UnownedJob] = []
    private var drainingLateJobs = false
    private var wakeupClosed = false
    private var shutdownWaiters: [CheckedContinuation<Void, any Error>] = []
    private var closeResult: Int32?

    // Loop-thread only.
    private var resources: [ObjectIdentifier: any LoopResource] = [:]
    /// Set when shutdown begins (loop thread only).
    private var shuttingDown = false
    private var endOfPassClosed = false
    private var flushQueue: [TCPConnection] = []
    private var endOfPassActions: [() -> Void] = []
    /// A reusable pool of 64 KiB write buffers, so steady writing does not call malloc.
    let bufferPool = WriteBufferPool()

    private enum LifecycleState { case running, closing, closed }

    /// Starts a loop on a new thread.
    ///
    /// - Parameter name: a name for logs and the thread (at most 15 bytes reach the OS).
    /// - Throws: `UVError` when libuv cannot create the loop.
    public init(name: String = "devts-loop") throws {
        self.name = name
        uvLoop = .allocate(capacity: 1)
        wakeup = .allocate(capacity: 1)
        endOfPass = .allocate(capacity: 1)
        do {
            try UVError.check(uv_loop_init(uvLoop), "uv_loop_init")
        } catch {
            uvLoop.deallocate(); wakeup.deallocate(); endOfPass.deallocate()
            throw error
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        uvLoop.pointee.data = me
        uv_async_init(uvLoop, wakeup) { async in
            EventLoop.from(async!.pointee.data).drainJobs()
        }
        wakeup.pointee.data = me
        uv_check_init(uvLoop, endOfPass)
        endOfPass.pointee.data = me
        uv_check_start(endOfPass) { check in
            EventLoop.from(check!.pointee.data).runEndOfPass()
        }
        // The thread keeps the loop alive until the loop has closed.
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
            loop.threadMain()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    deinit {
        precondition(state == .closed, "leak of running EventLoop '\(name)': call shutdown() first")
        uvLoop.deallocate()
        wakeup.deallocate()
        endOfPass.deallocate()
    }

    @inline(__always)
    static func from(_ data: UnsafeMutableRawPointer?) -> EventLoop {
        Unmanaged<EventLoop>.fromOpaque(data!).takeUnretainedValue()
    }

    /// True when called on this loop's thread.
    public var isInLoopThread: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Stops the program when not called on the loop thread: misuse is a programming error.
    @inline(__always)
    public func preconditionInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(isInLoopThread, "must be called on the thread of EventLoop '\(name)'", file: file, line: line)
    }

    /// The number of libuv handles (connections, listeners, timers) open on this loop, not counting
    /// the loop's own. Loop thread only; tests use it to check for leaks.
    public var openResourceCount: Int {
        preconditionInLoop()
        return resources.count
    }

    // MARK: Jobs

    /// Runs `body` on the loop thread, soon. Callable from any thread.
    ///
    /// - Returns: false when the loop has shut down and `body` will never run.
    @discardableResult
    public func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        enqueueJob(.closure(body))
    }

    /// Runs `body` on the loop thread and returns its result.
    ///
    /// - Throws: what `body` throws, or `EventLoopError.shutDown` when the loop no longer runs.
    public func submit<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
            let accepted = execute { cont.resume(with: Result { try body() }) }
            if !accepted { cont.resume(throwing: EventLoopError.shutDown(name)) }
        }
    }

    @discardableResult
    func enqueueJob(_ job: LoopJob) -> Bool {
        // The wakeup is signalled under the lock: signalled after unlocking, it could race with
        // `closeEverything` closing the handle and the loop closing its eventfd, and libuv aborts (or
        // writes to a reused descriptor). `uv_async_send` is cheap once the wakeup is pending.
        lock.withLock { () -> Bool in
            guard acceptingJobs else { return false }
            pendingJobs.append(job)
            if !wakeupClosed { uv_async_send(wakeup) }
            return true
        }
    }

    private func drainJobs() {
        // Swap the queue out so jobs may enqueue more without deadlock; reuse its storage next time.
        var jobs = lock.withLock { () -> [LoopJob] in
            let jobs = pendingJobs
            pendingJobs = spareJobs
            return jobs
        }
        for job in jobs { run(job) }
        jobs.removeAll(keepingCapacity: true)
        lock.withLock { spareJobs = jobs }
    }

    /// Runs a job that reached the loop after it shut down (an actor pinned to the loop was called
    /// late), so the actor can still answer — for instance throw "shut down". Jobs run one at a time,
    /// in order, on the thread that found the queue idle. Such a job must not touch libuv: runtime
    /// calls would trap on the loop-thread check.
    func runAfterShutdown(_ job: UnownedJob) {
        let drain = lock.withLock { () -> Bool in
            lateJobs.append(job)
            if drainingLateJobs { return false }
            drainingLateJobs = true
            return true
        }
        guard drain else { return }
        while let next = lock.withLock({ () -> UnownedJob? in
            if lateJobs.isEmpty {
                drainingLateJobs = false
                return nil
            }
            return lateJobs.removeFirst()
        }) {
            next.runSynchronously(on: asUnownedSerialExecutor())
        }
    }

    @inline(__always)
    private func run(_ job: LoopJob) {
        switch job {
        case .closure(let body): body()
        case .executorJob(let job): job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }

    /// Bytes of write buffers that this loop's connections hold (queued frames, and batches with
    /// libuv). Loop thread only.
    public var writeBufferBytes: Int {
        preconditionInLoop()
        return bufferPool.bytesInUse
    }

    /// The loop's clock in milliseconds (libuv's cached time of this loop pass). Loop thread only.
    public var nowMilliseconds: UInt64 {
        preconditionInLoop()
        return uv_now(uvLoop)
    }

    // MARK: End of pass

    /// Asks for `connection`'s queued writes to be flushed at the end of this loop pass.
    func scheduleFlush(_ connection: TCPConnection) {
        flushQueue.append(connection)
    }

    /// Runs `action` once at the end of the current loop pass, after queued writes have been flushed.
    /// Loop thread only.
    public func atEndOfPass(_ action: @escaping () -> Void) {
        preconditionInLoop()
        endOfPassActions.append(action)
    }

    private func runEndOfPass() {
        if shuttingDown { closeResources() }
        while !flushQueue.isEmpty || !endOfPassActions.isEmpty {
            if !flushQueue.isEmpty {
                let queue = flushQueue
                flushQueue.removeAll(keepingCapacity: true)
                for connection in queue { connection.flush() }
            }
            if !endOfPassActions.isEmpty {
                let actions = endOfPassActions
                endOfPassActions.removeAll()
                for action in actions { action() }
            }
        }
    }

    // MARK: Resources

    func register(_ resource: any LoopResource) {
        resources[ObjectIdentifier(resource)] = resource
    }

    func unregister(_ resource: any LoopResource) {
        resources.removeValue(forKey: ObjectIdentifier(resource))
        if shuttingDown { closeEndOfPassIfIdle() }
    }

    /// During shutdown: closes every resource, including any opened since shutdown began (a job
    /// that was already queued may open one).
    private func closeResources() {
        for resource in Array(resources.values) { resource.closeForShutdown() }
    }

    /// During shutdown, once every resource has closed: closes the end-of-pass handle, the last one
    /// keeping the loop running.
    private func closeEndOfPassIfIdle() {
        guard resources.isEmpty, !endOfPassClosed else { return }
        endOfPassClosed = true
        uv_check_stop(endOfPass)
        uv_close(clibuv_check_as_handle(endOfPass), nil)
    }

    // MARK: Shutdown

    /// Closes every handle on the loop, lets the loop run until idle, and stops its thread.
    ///
    /// Pending writes are cancelled (their buffers freed); connections see their close callbacks.
    /// Calling it again, or concurrently, waits for the same shutdown.
    ///
    /// - Throws: `EventLoopError.loopCloseFailed` when `uv_loop_close` does not return 0, which means
    ///   some handle was left open: a leak.
    public func shutdown() async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            enum Action { case start, wait, done(Int32) }
            let action = lock.withLock { () -> Action in
                switch state {
                case .running:
                    state = .closing
                    shutdownWaiters.append(cont)
                    pendingJobs.append(.closure { [unowned self] in self.closeEverything() })
                    uv_async_send(wakeup)  // under the lock, as in `enqueueJob`
                    return .start
                case .closing:
                    shutdownWaiters.append(cont)
                    return .wait
                case .closed:
                    return .done(closeResult ?? 0)
                }
            }
            switch action {
            case .start, .wait: break
            case .done(let rc): cont.resume(with: rc == 0 ? .success(()) : .failure(EventLoopError.loopCloseFailed(rc)))
            }
        }
    }

    private func closeEverything() {
        shuttingDown = true
        closeResources()
        runEndOfPass()
        // Jobs that arrive from now on are run by the loop thread after `uv_run` returns, before the
        // loop closes: none is lost, and nobody signals the closed wakeup handle.
        lock.withLock { wakeupClosed = true }
        uv_close(clibuv_async_as_handle(wakeup), nil)
        // The end-of-pass handle stays until the last resource has closed: it closes resources that
        // jobs still queued in this pass open.
        closeEndOfPassIfIdle()
    }

    private func threadMain() {
        clibuv_set_thread_name(name)
        uv_run(uvLoop, UV_RUN_DEFAULT)
        // Close what jobs opened after the shutdown pass, and run what was queued after the wakeup
        // handle closed, until nothing is open and the queue is empty and closed.
        while true {
            closeResources()
            uv_run(uvLoop, UV_RUN_DEFAULT)
            let jobs = lock.withLock { () -> [LoopJob]? in
                if pendingJobs.isEmpty {
                    acceptingJobs = false
                    return nil
                }
                defer { pendingJobs = [] }
                return pendingJobs
            }
            guard let jobs else { break }
            for job in jobs { run(job) }
        }
        let rc = uv_loop_close(uvLoop)
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, any Error>] in
            state = .closed
            closeResult = rc
            defer { shutdownWaiters = [] }
            return shutdownWaiters
        }
        let result: Result<Void, any Error> = rc == 0 ? .success(()) : .failure(EventLoopError.loopCloseFailed(rc))
        for waiter in waiters { waiter.resume(with: result) }
    }
}

/// Errors of the event loop itself.
public enum EventLoopError: Error, Sendable, CustomStringConvertible {
    /// The loop has shut down; the work was not run.
    case shutDown(String)
    /// `uv_loop_close` did not return 0: a handle was left open.
    case loopCloseFailed(Int32)

    public var description: String {
        switch self {
        case .shutDown(let name): "event loop '\(name)' has shut down"
        case .loopCloseFailed(let rc): "uv_loop_close failed: \(UVError(code: rc)) (a handle was left open)"
        }
    }
}

enum LoopJob {
    case closure(@Sendable () -> Void)
    case executorJob(UnownedJob)
}

/// Something owning a libuv handle on a loop, which the loop closes at shutdown.
protocol LoopResource: AnyObject {
    /// Closes the handle; called on the loop thread during shutdown.
    func closeForShutdown()
}

/// The loop as a Swift executor: an actor pins itself to a loop with
///
/// ```swift
/// nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
/// ```
///
/// and then runs on the loop thread, where it may call libuv directly. libuv callbacks, which run on
/// the same thread, reach such an actor with `assumeIsolated`.
extension EventLoop: SerialExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if !enqueueJob(.executorJob(job)) {
            runAfterShutdown(job)
        }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Called by `assumeIsolated` and `preconditionIsolated`: the loop's jobs all run on its thread,
    /// so being on that thread is being isolated to it.
    public func checkIsolated() {
        preconditionInLoop()
    }

    public func isIsolatingCurrentContext() -> Bool? {
        isInLoopThread
    }
}

import DevtsRuntime
import Testing

/// The loop's job queue, `submit`, end-of-pass actions, and shutdown.
@Suite struct EventLoopTests {
    @Test func jobsRunOnTheLoopThreadAndSubmitReturnsTheirResult() async throws {
        try await withLoop { loop in
            #expect(!loop.isInLoopThread)
            let (onLoop, value) = try await loop.submit { (loop.isInLoopThread, 6 * 7) }
            #expect(onLoop)
            #expect(value == 42)

            struct Failure: Error, Equatable { let code: Int }
            await #expect(throws: Failure(code: 7)) {
                try await loop.submit { () throws -> Int in throw Failure(code: 7) }
            }
        }
    }

    @Test func jobsFromManyThreadsEachRunExactlyOnceInOrderPerThread() async throws {
        let threadCount = 16
        let jobsPerThread = 2_000
        try await withLoop { loop in
            // Loop-thread state: how often each job ran, and the last job seen from each thread.
            let runs = LoopBound([Int](repeating: 0, count: threadCount * jobsPerThread), on: loop)
            let lastSeen = LoopBound([Int](repeating: -1, count: threadCount), on: loop)
            let outOfOrder = LoopBound(0, on: loop)
            let total = LoopBound(0, on: loop)
            let refused = Locked(0)

            let threads = Threads(threadCount) { thread in
                for job in 0..<jobsPerThread {
                    let accepted = loop.execute {
                        runs.value[thread * jobsPerThread + job] += 1
                        total.value += 1
                        if lastSeen.value[thread] >= job { outOfOrder.value += 1 }
                        lastSeen.value[thread] = job
                    }
                    if !accepted { refused.withLock { $0 += 1 } }
                }
            }
            // Executor jobs (an actor pinned to the loop) interleave with the closures.
            let counter = PinnedCounter(loop: loop)
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<500 { group.addTask { await counter.increment() } }
            }
            threads.join()

            #expect(refused.value == 0)
            try await waitUntil("every job has run") { try await total.read() == threadCount * jobsPerThread }
            let counts = try await runs.read()
            let wrong = counts.indices.filter { counts[$0] != 1 }
            #expect(wrong.isEmpty, "jobs that did not run exactly once: \(wrong.prefix(10))")
            #expect(try await outOfOrder.read() == 0)
            #expect(await counter.value == 500)
        }
    }

    @Test func endOfPassActionsRunOnceAfterTheJobThatAddedThem() async throws {
        try await withLoop { loop in
            let order = LoopBound([String](), on: loop)
            try await loop.perform {
                loop.atEndOfPass {
                    order.value.append("end of pass")
                    loop.atEndOfPass { order.value.append("added at end of pass") }
                }
                order.value.append("job")
            }
            try await waitUntil("end-of-pass actions ran") { try await order.read().count == 3 }
            // One more pass, to see that nothing runs twice.
            try await loop.perform {}
            #expect(try await order.read() == ["job", "end of pass", "added at end of pass"])
        }
    }

    @Test func shutdownTwiceAndConcurrentlyIsFine() async throws {
        let weakLoop = WeakRef<EventLoop>()
        do {
            let loop = try EventLoop(name: "twice")
            weakLoop.value = loop
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { try await loop.shutdown() } }
                try await group.waitForAll()
            }
            try await loop.shutdown()

            // After shutdown the loop refuses work, clearly.
            #expect(!loop.execute {})
            let error = await #expect(throws: EventLoopError.self) { try await loop.submit { 1 } }
            #expect(error?.description == "event loop 'twice' has shut down")
        }
        try await waitUntil("the loop is freed") { weakLoop.value == nil }
    }

    @Test func jobsQueuedDuringShutdownStillRun() async throws {
        // A close callback that runs during shutdown enqueues more work: it runs before the loop
        // closes, none is lost.
        let ran = Locked(false)
        let reason = Locked<TCPConnection.CloseReason?>(nil)
        try await withLoop("late-jobs", expectAllClosed: false) { loop in
            let accepted = LoopBound([TCPConnection](), on: loop)
            let listener = try await TCPListener.listen(on: loop, address: .loopbackAnyPort) {
                accepted.value.append($0)  // kept open: shutdown closes it
            }
            let address = try await loop.perform { listener.address }
            let connection = try await TCPConnection.connect(on: loop, to: address)
            try await loop.perform {
                connection.startReading(onFrames: { _ in }, onClose: { closeReason in
                    reason.withLock { $0 = closeReason }
                    loop.execute { ran.withLock { $0 = true } }
                })
            }
            try await waitUntil("the server accepted") { try await accepted.read().count == 1 }
            try await shutDown(loop)
        }
        #expect(reason.value == .local)
        #expect(ran.value)
    }

    @Test func workEnqueuedFromManyThreadsWhileTheLoopShutsDownRunsOnceOrIsRefused() async throws {
        // Threads keep enqueueing while the loop shuts down: every job `execute` accepted runs
        // exactly once, every job it refused never runs, and no thread signals a closed loop.
        for round in 0..<5 {
            let loop = try EventLoop(name: "race-\(round)")
            let accepted = Locked(0)
            let ran = Locked(0)
            let threads = Threads(8) { _ in
                for _ in 0..<20_000 {
                    guard loop.execute({ ran.withLock { $0 += 1 } }) else { return }
                    accepted.withLock { $0 += 1 }
                }
            }
            try await waitUntil("some jobs ran") { ran.value >= 500 }
            try await shutDown(loop)
            threads.join()
            #expect(ran.value == accepted.value, "round \(round)")
        }
    }
}

/// A counter on an actor pinned to a loop.
actor PinnedCounter {
    let loop: EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    private(set) var value = 0
    init(loop: EventLoop) { self.loop = loop }
    func increment() {
        loop.preconditionInLoop()
        value += 1
    }
}

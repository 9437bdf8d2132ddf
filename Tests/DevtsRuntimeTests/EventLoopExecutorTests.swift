import DevtsRuntime
import Testing

/// An actor pinned to a loop: `nonisolated var unownedExecutor { loop.asUnownedSerialExecutor() }`.
actor LoopActor {
    let loop: EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    /// Unsynchronised on purpose: if two calls ever ran at once, ThreadSanitizer would say so, and
    /// the count would come out wrong.
    private(set) var calls = 0
    private(set) var offLoopCalls = 0
    private(set) var timerFirings = 0
    private var timer: LoopTimer?

    init(loop: EventLoop) { self.loop = loop }

    /// Counts a call and reports whether it ran on the loop thread.
    func call() -> Bool {
        let onLoop = loop.isInLoopThread
        if !onLoop { offLoopCalls += 1 }
        calls += 1
        return onLoop
    }

    /// Counts a call made from a loop callback through `assumeIsolated`.
    func callFromLoop() {
        calls += 1
    }

    /// Leaves the actor for the global executor and comes back: the rest runs on the loop again.
    func hopAwayAndBack() async -> (away: Bool, back: Bool) {
        let away = await isOnLoop(loop)
        return (away, loop.isInLoopThread)
    }

    /// A task created here inherits the actor's isolation, so it runs on the loop as well.
    func onLoopInChildTask() async -> Bool {
        await Task { self.loop.isInLoopThread }.value
    }

    /// Starts a repeating timer whose callback reaches the actor with `assumeIsolated`.
    func startTimer(firings: Int) {
        let timer = LoopTimer(on: loop)
        self.timer = timer
        timer.start(after: .milliseconds(1), repeating: .milliseconds(1)) {
            self.preconditionIsolated("timer callbacks run on the loop")
            self.assumeIsolated { actor in
                actor.timerFirings += 1
                if actor.timerFirings == firings { actor.stopTimer() }
            }
        }
    }

    private func stopTimer() {
        timer?.close()
        timer = nil
    }
}

private nonisolated func isOnLoop(_ loop: EventLoop) async -> Bool { loop.isInLoopThread }

/// Claims `actor`'s isolation from wherever it is called.
private func assumeIsolatedHere(_ actor: LoopActor) {
    actor.assumeIsolated { _ in }
}

@Suite struct EventLoopExecutorTests {
    @Test func aPinnedActorRunsOnlyOnTheLoopThread() async throws {
        try await withLoop("pinned") { loop in
            let actor = LoopActor(loop: loop)
            let callers = 2_000
            let onLoop = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<callers { group.addTask { await actor.call() } }
                return await group.reduce(0) { $1 ? $0 + 1 : $0 }
            }
            #expect(onLoop == callers)
            #expect(await actor.offLoopCalls == 0)
            #expect(await actor.calls == callers)
            #expect(!loop.isInLoopThread)
        }
    }

    @Test func aPinnedActorIsSerialWithTheLoopsOwnJobs() async throws {
        try await withLoop("serial") { loop in
            let actor = LoopActor(loop: loop)
            let each = 1_000
            // Actor calls (executor jobs) and loop closures (which reach the actor through
            // `assumeIsolated`) mutate the same unsynchronised counter at once.
            let threads = Threads(4) { _ in
                for _ in 0..<each {
                    loop.execute {
                        actor.preconditionIsolated()
                        actor.assumeIsolated { $0.callFromLoop() }
                    }
                }
            }
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<each { group.addTask { _ = await actor.call() } }
            }
            threads.join()
            try await waitUntil("every call has run") { await actor.calls == 5 * each }
            // One more round trip: nothing ran twice.
            try await loop.perform {}
            #expect(await actor.calls == 5 * each)
        }
    }

    @Test func assumeIsolatedWorksFromLoopCallbacks() async throws {
        try await withLoop("assume") { loop in
            let actor = LoopActor(loop: loop)
            // From a job.
            try await loop.perform {
                actor.preconditionIsolated()
                actor.assumeIsolated { $0.callFromLoop() }
            }
            #expect(await actor.calls == 1)
            // From a timer callback.
            await actor.startTimer(firings: 3)
            try await waitUntil("the timer fired three times and closed") {
                try await openResources(loop) == 0
            }
            #expect(await actor.timerFirings == 3)
        }
    }

    @Test func anActorMethodResumesOnTheLoopAfterAwaitingElsewhere() async throws {
        try await withLoop("hop") { loop in
            let actor = LoopActor(loop: loop)
            let (away, back) = await actor.hopAwayAndBack()
            #expect(!away)
            #expect(back)
            #expect(await actor.onLoopInChildTask())
        }
    }

    @Test func aPinnedActorStillAnswersAfterItsLoopShutDown() async throws {
        // A call that reaches the actor after shutdown runs off the loop, instead of trapping.
        let loop = try EventLoop(name: "late-actor")
        let actor = LoopActor(loop: loop)
        #expect(await actor.call())
        try await shutDown(loop)
        let onLoop = await actor.call()
        #expect(!onLoop)
        #expect(await actor.calls == 2)
    }

    @Test func assumeIsolatedOffTheLoopThreadStopsTheProgram() async {
        await #expect(processExitsWith: .failure) {
            let loop = try EventLoop(name: "exit-test")
            assumeIsolatedHere(LoopActor(loop: loop))
        }
    }
}

import DevtsRuntime
import Testing

/// Timers. Where a test must show that something does *not* happen, it waits for a later timer on
/// the same loop (a barrier) rather than for an amount of time: libuv runs due timers in order of
/// their deadlines, so when the barrier fires, anything due before it has fired too.
@Suite struct LoopTimerTests {
    @Test func aScheduledTimerFiresOnceAndClosesItself() async throws {
        try await withLoop("timer-once") { loop in
            let fired = LoopBound(0, on: loop)
            let barrier = LoopBound(false, on: loop)
            let before = try await loop.perform { () -> Int in
                loop.schedule(after: .milliseconds(2)) {
                    loop.preconditionInLoop()
                    fired.value += 1
                }
                loop.schedule(after: .milliseconds(30)) { barrier.value = true }
                return loop.openResourceCount
            }
            #expect(before == 2)
            try await waitUntil("the barrier timer fired") { try await barrier.read() }
            #expect(try await fired.read() == 1)
            // Both timers closed themselves after firing.
            try await waitUntil("both timers closed") { try await openResources(loop) == 0 }
        }
    }

    @Test func aRepeatingTimerFiresUntilClosed() async throws {
        try await withLoop("timer-repeat") { loop in
            let fired = LoopBound(0, on: loop)
            try await loop.perform {
                let timer = LoopTimer(on: loop)
                timer.start(after: .milliseconds(1), repeating: .milliseconds(1)) {
                    fired.value += 1
                    if fired.value == 5 {
                        timer.close()
                        timer.close()  // closing twice is harmless
                    }
                }
            }
            try await waitUntil("the timer closed") { try await openResources(loop) == 0 }
            #expect(try await fired.read() == 5)
        }
    }

    @Test func aStoppedTimerStaysQuietAndCanBeStartedAgain() async throws {
        try await withLoop("timer-restart") { loop in
            let fired = LoopBound(0, on: loop)
            let barrier = LoopBound(false, on: loop)
            let timer = try await loop.perform { () -> LoopTimer in
                let timer = LoopTimer(on: loop)
                timer.start(after: .milliseconds(1), repeating: .milliseconds(1)) {
                    fired.value += 1
                    if fired.value == 3 {
                        timer.stop()
                        loop.schedule(after: .milliseconds(20)) { barrier.value = true }
                    }
                }
                return timer
            }
            try await waitUntil("the barrier after stopping fired") { try await barrier.read() }
            #expect(try await fired.read() == 3)

            // Started again, without repeating: it fires once more, and only once.
            let secondBarrier = LoopBound(false, on: loop)
            try await loop.perform {
                timer.start(after: .milliseconds(1)) { fired.value += 1 }
                loop.schedule(after: .milliseconds(20)) { secondBarrier.value = true }
            }
            try await waitUntil("the barrier after restarting fired") { try await secondBarrier.read() }
            #expect(try await fired.read() == 4)
            try await loop.perform { timer.close() }
        }
    }

    @Test func closingATimerBeforeItFiresCancelsIt() async throws {
        try await withLoop("timer-cancel") { loop in
            let fired = LoopBound(false, on: loop)
            let barrier = LoopBound(false, on: loop)
            try await loop.perform {
                let timer = loop.schedule(after: .milliseconds(5)) { fired.value = true }
                timer.close()
                timer.close()
                loop.schedule(after: .milliseconds(30)) { barrier.value = true }
            }
            try await waitUntil("the barrier timer fired") { try await barrier.read() }
            #expect(try await fired.read() == false)
        }
    }

    @Test func timersFireInOrderOfTheirDeadlines() async throws {
        try await withLoop("timer-order") { loop in
            let order = LoopBound([Int](), on: loop)
            try await loop.perform {
                for delay in [12, 3, 8, 0, 5] {
                    loop.schedule(after: .milliseconds(delay)) { order.value.append(delay) }
                }
            }
            try await waitUntil("all five fired") { try await order.read().count == 5 }
            #expect(try await order.read() == [0, 3, 5, 8, 12])
        }
    }

    @Test func creatingATimerOffTheLoopThreadStopsTheProgram() async {
        await #expect(processExitsWith: .failure) {
            let loop = try EventLoop(name: "exit-test")
            _ = LoopTimer(on: loop)
        }
    }
}

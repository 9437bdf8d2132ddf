// fanout-profile: runs one fan-out harness, for a profiler. Unlike fanout-compare it does not
// replace malloc, so valgrind runs it:
//
//   swift build -c release --product fanout-profile
//   cp .build/release/fanout-profile /tmp/fp && strip -g /tmp/fp   # valgrind 3.19 cannot read DWARF 5
//   valgrind --tool=callgrind /tmp/fp swift 64 400000
//
// Arguments: c|swift|cluster, frame size (bytes), frames per run across all receivers, runs.

import FanoutKit

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 2, ["c", "swift", "cluster"].contains(arguments[1]) else {
    print("usage: fanout-profile c|swift|cluster [FRAME_SIZE=64] [FRAMES=1000000] [RUNS=1] [RECEIVERS=4]")
    exit(2)
}
let frameSize = arguments.count > 2 ? Int(arguments[2]) ?? 64 : 64
let frames = arguments.count > 3 ? Int(arguments[3]) ?? 1_000_000 : 1_000_000
let runs = arguments.count > 4 ? Int(arguments[4]) ?? 1 : 1
let receivers = arguments.count > 5 ? Int(arguments[5]) ?? 4 : 4

/// Runs the harness. The main thread blocks on a semaphore instead of using an async main:
/// valgrind 3.19 crashes when the main thread parks in libdispatch's `dispatch_main`.
@Sendable func profile() async throws {
    let harness: any FanoutHarness
    switch arguments[1] {
    case "c": harness = try CFanoutHarness.start(receivers: receivers, frameSize: frameSize)
    case "swift": harness = try await SwiftFanoutHarness.start(receivers: receivers, frameSize: frameSize)
    default: harness = try await ClusterFanoutHarness.start(receivers: receivers, frameSize: frameSize)
    }
    for _ in 0..<runs {
        let elapsed = try await harness.run(framesPerReceiver: frames / receivers)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("\(arguments[1]) \(frameSize) B: \(Int(Double(frames / receivers * receivers) / seconds)) frames/s")
    }
    try await harness.shutdown()
}

final class Completion: @unchecked Sendable {
    var semaphore = sem_t()
    var failure: (any Error)?
    init() { sem_init(&semaphore, 0, 0) }
}

let completion = Completion()
Task.detached {
    do { try await profile() } catch { completion.failure = error }
    sem_post(&completion.semaphore)
}
while sem_wait(&completion.semaphore) != 0 {}
if let failure = completion.failure {
    print("fanout-profile: \(failure)")
    exit(1)
}

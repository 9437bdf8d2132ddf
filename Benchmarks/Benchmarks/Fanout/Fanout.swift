// Fan-out throughput: one sender, four receivers, over TCP on 127.0.0.1, for the C reference
// (libuv directly), for DevtsRuntime, and for the cluster layer (one Node broadcasting named events
// to four other Nodes, "Cluster"), with 64-byte and 1 KiB frames or payloads.
//
// One iteration delivers 1,000,000 frames (250,000 to each receiver), so:
//   - "Frames/s" (custom metric) is the delivery rate across all receivers, and
//   - mallocCountTotal is the number of allocations per 1M delivered frames (steady state:
//     connections are set up before and torn down after the measured iterations).
// `scripts/bench.sh` also runs `fanout-compare`, which prints the Swift/C ratio in a table.

import Benchmark
import FanoutKit

let receivers = 4
let framesPerIteration = 1_000_000
let framesPerReceiver = framesPerIteration / receivers

let framesPerSecond = BenchmarkMetric.custom("Frames/s", polarity: .prefersLarger, useScalingFactor: false)

/// Holds a harness between a benchmark's setup, iterations and teardown (which run one after
/// another, never concurrently).
final class HarnessBox: @unchecked Sendable {
    var harness: (any FanoutHarness)?
}

func fanoutBenchmark(_ implementation: String, frameSize: Int, start: @escaping @Sendable () async throws -> any FanoutHarness) {
    let box = HarnessBox()
    let name = "Fanout \(implementation) \(frameSize % 1024 == 0 ? "\(frameSize / 1024)KiB" : "\(frameSize)B") x1M frames"
    Benchmark(
        name,
        configuration: .init(
            metrics: [.wallClock, framesPerSecond, .mallocCountTotal, .cpuTotal],
            warmupIterations: 1,
            maxDuration: .seconds(3),
            maxIterations: 25
        )
    ) { benchmark in
        guard let harness = box.harness else {
            benchmark.error("harness not started")
            return
        }
        do {
            let elapsed = try await harness.run(framesPerReceiver: framesPerReceiver)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            benchmark.measurement(framesPerSecond, Int(Double(framesPerIteration) / seconds))
        } catch {
            benchmark.error("\(name): \(error)")
        }
    } setup: {
        box.harness = try await start()
    } teardown: {
        let harness = box.harness
        box.harness = nil
        try await harness?.shutdown()
    }
}

let benchmarks: @Sendable () -> Void = {
    for frameSize in [64, 1024] {
        fanoutBenchmark("C", frameSize: frameSize) {
            try CFanoutHarness.start(receivers: receivers, frameSize: frameSize)
        }
        fanoutBenchmark("Swift", frameSize: frameSize) {
            try await SwiftFanoutHarness.start(receivers: receivers, frameSize: frameSize)
        }
        fanoutBenchmark("Cluster", frameSize: frameSize) {
            try await ClusterFanoutHarness.start(receivers: receivers, frameSize: frameSize)
        }
    }
}

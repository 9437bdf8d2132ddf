// fanout-compare: the C reference fan-out, the DevtsRuntime one, and the cluster layer's
// (Node.broadcast between five nodes), run back to back in one process, with medians in a table
// and the Swift/C ratio.
//
//   swift run -c release fanout-compare [--runs 7] [--frames 1000000] [--receivers 4] [--sizes 64,1024]
//
// --frames is the number of frames delivered per run, across all receivers. The two harnesses
// alternate run by run, so a noisy neighbour hurts both alike. Allocations are counted by
// CAllocCounter (every malloc in the process, whichever thread) around each run; CPU time
// (user + system, getrusage) per frame is the steadier figure when the machine is busy.

import CAllocCounter
import FanoutKit

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var runs = 7
    var frames = 1_000_000
    var receivers = 4
    var sizes = [64, 1024]
    /// Run only "c", "swift" or "cluster" (for profiling one side).
    var only: String?

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            func value() -> String {
                guard let value = iterator.next() else { usage("\(argument) needs a value") }
                return value
            }
            switch argument {
            case "--runs": runs = Int(value()) ?? 0
            case "--frames": frames = Int(value()) ?? 0
            case "--receivers": receivers = Int(value()) ?? 0
            case "--sizes": sizes = value().split(separator: ",").map { Int($0) ?? -1 }
            case "--only": only = value().lowercased()
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(argument)")
            }
        }
        if runs < 1 || frames < receivers || receivers < 1 || sizes.isEmpty || sizes.contains(where: { $0 < 1 || $0 > 65532 })
            || !(only == nil || only == "c" || only == "swift" || only == "cluster")
        {
            usage("invalid arguments")
        }
    }
}

func usage(_ problem: String?) -> Never {
    if let problem { print("fanout-compare: \(problem)") }
    print("usage: fanout-compare [--runs N] [--frames FRAMES_PER_RUN] [--receivers N] [--sizes 64,1024] [--only c|swift|cluster]")
    exit(problem == nil ? 0 : 2)
}

struct Sample {
    var framesPerSecond: Double
    var allocationsPerFrame: Double
    /// CPU time (user + system, all threads of the process) per frame: less sensitive than the
    /// rate to other work on the machine.
    var cpuNanosecondsPerFrame: Double
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) * 1e-6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

func measure(_ harness: any FanoutHarness, framesPerReceiver: Int) async throws -> Sample {
    let before = alloc_counter_count()
    let cpuBefore = processCPUSeconds()
    let elapsed = try await harness.run(framesPerReceiver: framesPerReceiver)
    let cpu = processCPUSeconds() - cpuBefore
    let allocations = alloc_counter_count() - before
    let frames = Double(framesPerReceiver * harness.receivers)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    return Sample(
        framesPerSecond: frames / seconds,
        allocationsPerFrame: Double(allocations) / frames,
        cpuNanosecondsPerFrame: cpu * 1e9 / frames
    )
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func formatRate(_ value: Double) -> String {
    if value >= 1e6 { return formatFixed(value / 1e6, 2) + "M" }
    if value >= 1e3 { return formatFixed(value / 1e3, 1) + "K" }
    return formatFixed(value, 0)
}

func formatFixed(_ value: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (value * scale).rounded()
    let whole = Int(scaled / scale)
    if decimals == 0 { return "\(whole)" }
    let fraction = Int(abs(scaled) - abs(Double(whole)) * scale)
    let digits = String(fraction)
    return "\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
}

func sizeName(_ size: Int) -> String {
    size % 1024 == 0 ? "\(size / 1024) KiB" : "\(size) B"
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let framesPerReceiver = options.frames / options.receivers
if alloc_counter_active() == 0 {
    print("fanout-compare: warning: the allocation counter is not active; allocations read as 0")
}
print(
    "Cluster: Node.broadcast(_:payloads:) from 1 node to \(options.receivers) others in this process (one loop each), "
        + "events of the same size, counted by an on(_:_:) handler on each receiver."
)
print(
    "Fan-out: 1 sender -> \(options.receivers) receivers over TCP 127.0.0.1, sender and receivers on "
        + "one loop thread each, 64 KiB batches; \(framesPerReceiver * options.receivers) frames per run, "
        + "median of \(options.runs) runs (after 1 warm-up run)."
)

var rows: [[String]] = []
var failed = false
for size in options.sizes {
    var harnesses: [any FanoutHarness] = []
    if options.only == nil || options.only == "c" {
        harnesses.append(try CFanoutHarness.start(receivers: options.receivers, frameSize: size))
    }
    if options.only == nil || options.only == "swift" {
        harnesses.append(try await SwiftFanoutHarness.start(receivers: options.receivers, frameSize: size))
    }
    if options.only == nil || options.only == "cluster" {
        harnesses.append(try await ClusterFanoutHarness.start(receivers: options.receivers, frameSize: size))
    }
    var samples = [[Sample]](repeating: [], count: harnesses.count)
    for run in 0...options.runs {
        for (index, harness) in harnesses.enumerated() {
            let sample = try await measure(harness, framesPerReceiver: framesPerReceiver)
            if run > 0 { samples[index].append(sample) }
        }
    }
    let expected = expectedChecksum(
        receivers: options.receivers, frameSize: size, frames: framesPerReceiver * (options.runs + 1))
    for harness in harnesses {
        let checksum = try await harness.checksum()
        if checksum != expected {
            print("fanout-compare: \(type(of: harness)) checksum \(checksum), expected \(expected)")
            failed = true
        }
        try await harness.shutdown()
    }
    var rate: [String: Double] = [:]
    var allocations: [String: Double] = [:]
    var cpu: [String: Double] = [:]
    for (index, harness) in harnesses.enumerated() {
        let key = harness is CFanoutHarness ? "c" : harness is ClusterFanoutHarness ? "cluster" : "swift"
        rate[key] = median(samples[index].map(\.framesPerSecond))
        allocations[key] = median(samples[index].map(\.allocationsPerFrame))
        cpu[key] = median(samples[index].map(\.cpuNanosecondsPerFrame))
    }
    let ratio = rate["swift"].flatMap { swift in rate["c"].map { swift / $0 } }
    rows.append([
        sizeName(size), rate["c"].map(formatRate) ?? "-", rate["swift"].map(formatRate) ?? "-",
        ratio.map { formatFixed($0, 2) } ?? "-",
        allocations["c"].map { formatFixed($0, 4) } ?? "-", allocations["swift"].map { formatFixed($0, 4) } ?? "-",
        cpu["c"].map { formatFixed($0, 1) } ?? "-", cpu["swift"].map { formatFixed($0, 1) } ?? "-",
        rate["cluster"].map(formatRate) ?? "-", allocations["cluster"].map { formatFixed($0, 4) } ?? "-",
        cpu["cluster"].map { formatFixed($0, 1) } ?? "-",
    ])
}

let header = [
    "frame", "C frames/s", "Swift frames/s", "Swift/C", "C allocs/frame", "Swift allocs/frame",
    "C CPU ns/frame", "Swift CPU ns/frame", "Cluster events/s", "Cluster allocs/event", "Cluster CPU ns/event",
]
let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
for row in [header] + rows {
    print(row.indices.map { pad(row[$0], widths[$0]) }.joined(separator: "  "))
}
exit(failed ? 1 : 0)

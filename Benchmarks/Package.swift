// swift-tools-version:6.1
import PackageDescription

// Benchmarks of Devts, in a package of their own so that users of Devts never build the harness.
//
//   swift package benchmark                          # all benchmarks (package-benchmark, release)
//   swift run -c release fanout-compare              # C vs Swift fan-out, medians in a table
//
// The C reference (CFanout) links libuv itself, like the runtime does (Debian: libuv1-dev).
// SwiftPM names a path dependency after its folder (lowercased), which is wherever Devts is checked
// out: derive it instead of assuming "devts".
let devts = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "devts").lowercased()

let package = Package(
    name: "DevtsBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The fan-out written against libuv directly: the yardstick for the Swift runtime.
        .target(
            name: "CFanout",
            linkerSettings: [.linkedLibrary("uv")]
        ),
        // Counts malloc calls in fanout-compare (never linked next to package-benchmark's interposer).
        .target(name: "CAllocCounter"),
        // The same fan-out through DevtsRuntime, and a Swift face for the C one.
        .target(
            name: "FanoutKit",
            dependencies: [
                "CFanout",
                .product(name: "DevtsRuntime", package: devts),
                .product(name: "Devts", package: devts),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "fanout-compare",
            dependencies: ["FanoutKit", "CAllocCounter"]
        ),
        // One harness alone, for callgrind (fanout-compare's malloc counter upsets valgrind).
        .executableTarget(
            name: "fanout-profile",
            dependencies: ["FanoutKit"]
        ),
        .executableTarget(
            name: "Fanout",
            dependencies: [
                "FanoutKit",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Fanout",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

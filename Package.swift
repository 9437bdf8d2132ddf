// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Devts",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DevtsRuntime", targets: ["DevtsRuntime"]),
        .library(name: "Devts", targets: ["Devts"]),
        .executable(name: "devts", targets: ["DevtsCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            path: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .target(
            name: "DevtsRuntime",
            dependencies: ["CLibUV"]
        ),
        .target(
            name: "Devts",
            dependencies: [
                "DevtsRuntime",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Starting child processes without Foundation.Process (for the CLI's demo and the tests).
        .target(name: "DevtsSpawn"),
        .executableTarget(
            name: "DevtsCLI",
            dependencies: [
                "Devts",
                "DevtsSpawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "DevtsRuntimeTests", dependencies: ["DevtsRuntime"]),
        .testTarget(name: "DevtsTests", dependencies: ["Devts", "DevtsRuntime", "DevtsCLI", "DevtsSpawn"]),
    ],
    swiftLanguageModes: [.v6]
)

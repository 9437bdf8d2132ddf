import DevtsRuntime
import Glibc
import Testing

// Helpers shared by the runtime tests: a loop with a leak check, waiting on a condition with a
// deadline, state confined to a loop, a seeded random generator, and frame encoding written
// independently of the code under test.

// MARK: Loops

/// Runs `body` with a new event loop, then checks that nothing leaked.
///
/// The leak check: every handle the test opened has been closed (`openResourceCount` is back to 0,
/// so every close callback has run), `shutdown()` succeeds (`uv_loop_close` returned 0), and the loop
/// object itself is freed once its thread lets go of it, which fails when anything the test made
/// (a connection, a timer, a callback) still holds it.
///
/// - Parameter expectAllClosed: false for tests that leave handles open on purpose, for `shutdown()`
///   to close.
func withLoop<T>(
    _ name: String = "test-loop",
    expectAllClosed: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (EventLoop) async throws -> T
) async throws -> T {
    let freed = WeakRef<EventLoop>()
    let result: Result<T, any Error>
    do {
        let loop = try EventLoop(name: name)
        freed.value = loop
        do {
            result = .success(try await body(loop))
        } catch {
            result = .failure(error)
        }
        if expectAllClosed, case .success = result {
            do {
                try await waitUntil("every handle on '\(name)' is closed") {
                    try await loop.perform { loop.openResourceCount } == 0
                }
            } catch {
                Issue.record(error, sourceLocation: sourceLocation)
            }
        }
        try await shutDown(loop)
    }
    try await waitUntil("EventLoop '\(name)' is freed after shutdown") { freed.value == nil }
    return try result.get()
}

/// Shuts `loop` down, failing with `Timeout` rather than hanging when shutdown never completes (a
/// handle that does not close keeps `uv_run` going).
func shutDown(_ loop: EventLoop, timeout: Duration = .seconds(30)) async throws {
    let outcome = Locked<Result<Void, any Error>?>(nil)
    Task {
        do {
            try await loop.shutdown()
            outcome.withLock { $0 = .success(()) }
        } catch {
            outcome.withLock { $0 = .failure(error) }
        }
    }
    try await waitUntil("EventLoop '\(loop.name)' has shut down", timeout: timeout) { outcome.value != nil }
    try outcome.value!.get()
}

extension EventLoop {
    /// Runs `body` on the loop and returns its result, as `submit` does, but hands the result over
    /// through a mutex.
    ///
    /// When a continuation is resumed before its task has reached the `await` (the loop can be that
    /// quick), the Swift runtime takes a fast path in `swift_continuation_await` that has no
    /// ThreadSanitizer annotation, so TSan misses the happens-before edge and reports a race on what
    /// the loop thread wrote. A mutex released on the loop and taken here makes the edge visible.
    func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let handoff = Locked<Result<T, any Error>?>(nil)
        try await submit { handoff.withLock { $0 = Result { try body() } } }
        return try handoff.withLock { $0! }.get()
    }
}

/// Reads `openResourceCount` on the loop thread.
func openResources(_ loop: EventLoop) async throws -> Int {
    try await loop.perform { loop.openResourceCount }
}

// MARK: Waiting

/// A condition did not become true before its deadline.
struct Timeout: Error, CustomStringConvertible {
    let description: String
}

/// Polls `condition` until it is true, with a deadline; throws `Timeout` when the deadline passes.
///
/// Polling starts at 50 µs and backs off to 5 ms, so a condition that is already true, or soon
/// true, costs little, and a test never depends on how long something "should" take.
func waitUntil(
    _ what: @autoclosure () -> String,
    timeout: Duration = .seconds(30),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    var pause = Duration.microseconds(50)
    while try await !condition() {
        guard clock.now < deadline else {
            throw Timeout(description: "timed out after \(timeout) waiting until \(what())")
        }
        try await Task.sleep(for: pause)
        pause = min(pause * 2, .milliseconds(5))
    }
}

extension Task where Failure == any Error {
    /// The task's value, waited for with a deadline: on timeout the task is cancelled and `Timeout`
    /// thrown, so a test fails instead of hanging.
    func value(_ what: @autoclosure () -> String, timeout: Duration = .seconds(30)) async throws -> Success {
        let done = Locked(false)
        Task<Void, Never> {
            _ = await self.result
            done.withLock { $0 = true }
        }
        do {
            try await waitUntil(what(), timeout: timeout) { done.value }
        } catch {
            cancel()
            throw error
        }
        return try await value
    }
}

// MARK: Shared state

/// Test state confined to one loop's thread, like the handles whose callbacks update it.
///
/// Read it from a test with `read()`, which hops to the loop.
final class LoopBound<Value>: @unchecked Sendable {
    let loop: EventLoop
    private var storage: Value

    init(_ value: Value, on loop: EventLoop) {
        self.loop = loop
        storage = value
    }

    var value: Value {
        get {
            loop.preconditionInLoop()
            return storage
        }
        _modify {
            loop.preconditionInLoop()
            yield &storage
        }
    }
}

extension LoopBound where Value: Sendable {
    /// The value, read on the loop thread.
    func read() async throws -> Value { try await loop.perform { self.value } }
}

/// A value behind a pthread mutex, for state shared with threads other than a loop's.
final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var storage: Value

    init(_ value: Value) {
        storage = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&storage)
    }

    var value: Value { withLock { $0 } }
}

/// A weak reference, to check that an object is freed.
final class WeakRef<T: AnyObject> {
    weak var value: T?
    init(_ value: T? = nil) { self.value = value }
}

// MARK: Threads

/// Plain threads, for calling thread-safe API from outside Swift's cooperative pool.
final class Threads {
    private final class Start: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private var threads: [pthread_t] = []

    /// Starts `count` threads, each running `body` with its index.
    init(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        for index in 0..<count {
            let start = Unmanaged.passRetained(Start { body(index) }).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { argument in
                Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue().run()
                return nil
            }, start)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
    }

    /// Waits for every thread to finish.
    func join() {
        for thread in threads { pthread_join(thread, nil) }
        threads = []
    }

    deinit { join() }
}

// MARK: Randomness

/// SplitMix64: small, fast, and seeded, so a failing run can be repeated.
struct SeededRandom: RandomNumberGenerator {
    let seed: UInt64
    private var state: UInt64

    init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// Seeds from `DEVTS_TEST_SEED` when set, else randomly, and prints the seed.
    static func forTest(_ label: String) -> SeededRandom {
        let fromEnvironment = getenv("DEVTS_TEST_SEED").flatMap { UInt64(String(cString: $0)) }
        let seed = fromEnvironment ?? UInt64.random(in: .min ... .max)
        print("[\(label)] seed \(seed) (repeat with DEVTS_TEST_SEED=\(seed))")
        return SeededRandom(seed: seed)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes, filled eight at a time.
    mutating func bytes(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            var offset = 0
            while offset + 8 <= count {
                raw.storeBytes(of: next(), toByteOffset: offset, as: UInt64.self)
                offset += 8
            }
            var last = next()
            while offset < count {
                raw[offset] = UInt8(truncatingIfNeeded: last)
                last >>= 8
                offset += 1
            }
            initialized = count
        }
    }
}

// MARK: Frames

/// A frame header: the body's length, 4 bytes big-endian (written here independently of `FrameLength`).
func frameHeader(_ length: UInt32) -> [UInt8] {
    [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
}

/// The byte stream of `frames`: each body preceded by its header.
func encodeFrames(_ frames: [[UInt8]]) -> [UInt8] {
    var stream: [UInt8] = []
    stream.reserveCapacity(frames.reduce(0) { $0 + 4 + $1.count })
    for frame in frames {
        stream.append(contentsOf: frameHeader(UInt32(frame.count)))
        stream.append(contentsOf: frame)
    }
    return stream
}

/// Byte-wise equality with `memcmp`, fast in debug builds too.
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.count == b.count && a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in a.isEmpty || memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 }
    }
}

/// The index of the first frame that differs between `expected` and `actual`, or nil.
func firstMismatch(_ expected: [[UInt8]], _ actual: [[UInt8]]) -> Int? {
    for index in 0..<min(expected.count, actual.count) where !sameBytes(expected[index], actual[index]) {
        return index
    }
    return expected.count == actual.count ? nil : min(expected.count, actual.count)
}

extension SocketAddress {
    /// 127.0.0.1 with port 0: the OS picks a free port, which the listener then reports.
    static var loopbackAnyPort: SocketAddress {
        get throws { try SocketAddress(host: "127.0.0.1", port: 0) }
    }
}

// MARK: File descriptors

/// Raises the soft limit on open files to at least `needed` (up to the hard limit, or past it when
/// the process may), and returns the limit now in force.
func raiseOpenFileLimit(to needed: Int) -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur >= rlim_t(needed) { return Int(limit.rlim_cur) }
    var raised = limit
    raised.rlim_cur = min(rlim_t(needed), limit.rlim_max)
    if limit.rlim_max < rlim_t(needed) {
        // Only a privileged process (root in CI) may raise the hard limit; try, then fall back.
        raised.rlim_cur = rlim_t(needed)
        raised.rlim_max = rlim_t(needed)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return needed }
        raised = limit
        raised.rlim_cur = limit.rlim_max
    }
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

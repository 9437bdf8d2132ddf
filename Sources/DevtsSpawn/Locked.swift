import Foundation

/// A value behind a lock (`NSLock`, a pthread mutex).
///
/// Used instead of `Synchronization.Mutex` in the CLI and tests because ThreadSanitizer on Linux
/// reports false races on `Mutex`, which would fail `swift test --sanitize=thread`.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    /// Wraps `value`.
    public init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with the value, holding the lock.
    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A running fan-out: one sender writing frames of one size to every receiver over TCP on
/// 127.0.0.1, in the topology of `cfanout.h` (a sender loop thread, a receiver loop thread).
///
/// Set up once with `start`, measured with `run` as often as wanted, then `shutdown`. Not
/// reentrant: one call at a time.
public protocol FanoutHarness: AnyObject, Sendable {
    /// The number of receivers, each with its own connection from the sender.
    var receivers: Int { get }
    /// The body size of every frame, in bytes (each frame also has a 4-byte length prefix).
    var frameSize: Int { get }

    /// Sends `framesPerReceiver` frames to every receiver and returns the time from the start
    /// command until every receiver has parsed them all.
    ///
    /// - Throws: `FanoutError` (or the connection's close reason) when a connection fails.
    func run(framesPerReceiver: Int) async throws -> Duration

    /// The sum of the first body byte of every frame received so far.
    func checksum() async throws -> UInt64

    /// Closes every connection and stops the loop threads.
    ///
    /// - Throws: when a loop did not close cleanly (`uv_loop_close` did not return 0).
    func shutdown() async throws
}

/// What failed in a fan-out harness.
public struct FanoutError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The byte at `index` of every frame body, in both harnesses (so checksums agree).
@inline(__always)
func payloadByte(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: index &* 31 &+ 7) }

/// The checksum a fan-out must reach after sending `frames` frames to each of `receivers`.
public func expectedChecksum(receivers: Int, frameSize: Int, frames: Int) -> UInt64 {
    frameSize == 0 ? 0 : UInt64(receivers) * UInt64(frames) * UInt64(payloadByte(0))
}

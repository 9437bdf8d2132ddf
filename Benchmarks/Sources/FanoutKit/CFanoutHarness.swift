import CFanout

/// The C reference fan-out (`cfanout.c`, libuv directly) behind the `FanoutHarness` interface.
///
/// Its methods are synchronous (they also satisfy the protocol's async requirements): `run` blocks
/// the calling thread while the C loop threads work, which is what is being measured.
public final class CFanoutHarness: FanoutHarness, @unchecked Sendable {
    public let receivers: Int
    public let frameSize: Int
    private var handle: OpaquePointer?

    private init(receivers: Int, frameSize: Int, handle: OpaquePointer) {
        self.receivers = receivers
        self.frameSize = frameSize
        self.handle = handle
    }

    deinit {
        precondition(handle == nil, "leak of a running CFanoutHarness: call shutdown()")
    }

    /// Starts both loop threads and connects the receivers.
    ///
    /// - Throws: `FanoutError` when libuv could not set it up (the reason goes to stderr).
    public static func start(receivers: Int, frameSize: Int) throws -> CFanoutHarness {
        guard let handle = cfanout_create(Int32(receivers), Int32(frameSize)) else {
            throw FanoutError("cfanout_create(\(receivers), \(frameSize)) failed")
        }
        return CFanoutHarness(receivers: receivers, frameSize: frameSize, handle: handle)
    }

    public func run(framesPerReceiver: Int) throws -> Duration {
        guard let handle else { throw FanoutError("CFanoutHarness used after shutdown") }
        let seconds = cfanout_run(handle, framesPerReceiver)
        guard seconds >= 0 else { throw FanoutError("cfanout_run failed") }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    public func checksum() -> UInt64 {
        handle.map { cfanout_checksum($0) } ?? 0
    }

    public func shutdown() throws {
        guard let handle else { return }
        self.handle = nil
        let rc = cfanout_destroy(handle)
        guard rc == 0 else { throw FanoutError("cfanout_destroy: uv_loop_close returned \(rc)") }
    }
}

import CLibUV

/// An error reported by libuv: its negative error code, with libuv's name and message for it.
///
/// Compare with the static members, e.g. `catch let error as UVError where error == .connectionRefused`,
/// or match with `catch UVError.eof`.
///
/// libuv: `uv_err_name`, `uv_strerror` (docs/src/errors.rst).
public struct UVError: Error, Hashable, Sendable, CustomStringConvertible {
    /// libuv's negative error code (e.g. `UV_ECONNREFUSED`).
    public let code: Int32
    /// What was being done when the error happened, e.g. `"connect to 127.0.0.1:9"`.
    public let operation: String

    /// Wraps a libuv error code, naming the operation that failed.
    public init(code: Int32, operation: String = "") {
        self.code = code
        self.operation = operation
    }

    /// libuv's short name for the error, e.g. `"ECONNREFUSED"`.
    public var name: String { String(cString: uv_err_name(code)) }

    /// libuv's human-readable message for the error, e.g. `"connection refused"`.
    public var message: String { String(cString: uv_strerror(code)) }

    public var description: String {
        operation.isEmpty ? "\(name): \(message)" : "\(operation) failed: \(name): \(message)"
    }

    /// Two errors are equal when their codes are; the operation is context, not identity.
    public static func == (lhs: UVError, rhs: UVError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// Lets `catch UVError.eof` match any `UVError` with the same code.
    public static func ~= (pattern: UVError, value: any Error) -> Bool {
        (value as? UVError)?.code == pattern.code
    }

    /// End of stream: the peer closed the connection.
    public static let eof = UVError(code: UV_EOF.rawValue)
    /// The peer refused the connection (nothing listens on that port).
    public static let connectionRefused = UVError(code: UV_ECONNREFUSED.rawValue)
    /// The connection was reset by the peer.
    public static let connectionReset = UVError(code: UV_ECONNRESET.rawValue)
    /// The operation was cancelled, e.g. a write pending when its handle closed.
    public static let canceled = UVError(code: UV_ECANCELED.rawValue)
    /// The address is already in use.
    public static let addressInUse = UVError(code: UV_EADDRINUSE.rawValue)
    /// The address is not valid (for example, not a numeric IP address).
    public static let invalidArgument = UVError(code: UV_EINVAL.rawValue)
    /// The operation timed out.
    public static let timedOut = UVError(code: UV_ETIMEDOUT.rawValue)
    /// Writing to a connection whose peer has gone.
    public static let brokenPipe = UVError(code: UV_EPIPE.rawValue)

    /// Throws a `UVError` when `result` is a negative libuv status code.
    @discardableResult
    static func check(_ result: Int32, _ operation: @autoclosure () -> String) throws(UVError) -> Int32 {
        if result < 0 { throw UVError(code: result, operation: operation()) }
        return result
    }
}

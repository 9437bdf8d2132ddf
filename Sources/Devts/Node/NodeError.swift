/// An error from a node's public API: a code to match on, a message for people, and the cause.
public struct NodeError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Equatable {
        /// The configuration is not usable (the message says which setting).
        case invalidConfiguration
        /// The node could not listen on its address.
        case listenFailed
        /// The node was told it must join, and no cluster address answered.
        case joinFailed
        /// No member has this id.
        case unknownMember
        /// The member left or failed before the operation completed.
        case memberUnavailable
        /// No reply came within the request's timeout.
        case requestTimedOut
        /// The target had no handler for the request's name.
        case noHandler
        /// The target's handler failed; the message is its error.
        case handlerFailed
        /// The node has left or shut down.
        case shutDown
        /// A peer refused the handshake (another cluster, another protocol version...).
        case rejected
        /// A name or payload is too large for the wire.
        case tooLarge
    }

    /// What went wrong, to match on.
    public let code: Code
    /// What went wrong, for people.
    public let message: String
    /// The underlying error, if any (e.g. a `UVError`).
    public let cause: (any Error)?

    /// Makes an error with a code, a message and, optionally, its cause.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}

extension NodeError.Code {
    /// Lets `catch NodeError.Code.unknownMember` match a `NodeError` with that code.
    public static func ~= (pattern: NodeError.Code, value: any Error) -> Bool {
        (value as? NodeError)?.code == pattern
    }
}

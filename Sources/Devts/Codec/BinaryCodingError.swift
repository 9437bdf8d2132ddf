/// An error thrown by ``BinaryEncoder`` or ``BinaryDecoder``.
///
/// Every failure of the binary codec surfaces as this one type, whatever its origin: malformed
/// input found by the decoder, a limit that hostile input exceeded, a Codable pattern the positional
/// format cannot express, or an `EncodingError`/`DecodingError` (or any other error) thrown by a
/// type's own `encode(to:)`/`init(from:)`, which is wrapped with code ``Code/invalidValue``.
public struct BinaryCodingError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure occurred.
    public enum Code: Sendable {
        /// The input ended before the value was complete.
        case truncated
        /// A byte sequence is not a valid encoding of the expected value (bad flag or bool byte,
        /// invalid UTF-8, overlong or overflowing varint, out-of-range integer, key mismatch), or a
        /// type's own Codable implementation rejected the value.
        case invalidValue
        /// The top-level value was decoded but bytes remained after it.
        case trailingBytes
        /// A length, count or nesting depth exceeds a limit of the decoder.
        case lengthTooLarge
        /// The value uses a Codable feature the positional format cannot represent.
        case unsupported
    }

    /// What kind of failure occurred.
    public let code: Code
    /// A human-readable explanation of the failure.
    public let message: String
    /// Where the failure occurred, as dotted keys and bracketed indices (`"orders[3].price"`);
    /// empty at the top level.
    public let codingPath: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: What kind of failure occurred.
    ///   - message: A human-readable explanation of the failure.
    ///   - codingPath: Where the failure occurred, as dotted keys and bracketed indices.
    public init(_ code: Code, _ message: String, codingPath: String = "") {
        self.code = code
        self.message = message
        self.codingPath = codingPath
    }

    /// The code, the coding path (when there is one) and the message.
    public var description: String {
        codingPath.isEmpty
            ? "BinaryCodingError.\(code): \(message)"
            : "BinaryCodingError.\(code) at \(codingPath): \(message)"
    }

    /// This error with `key` prepended to its coding path; used while unwinding out of a container.
    func under(key: some CodingKey) -> BinaryCodingError {
        prepending(key.stringValue)
    }

    /// This error with the element index prepended to its coding path.
    func under(index: Int) -> BinaryCodingError {
        prepending("[\(index)]")
    }

    private func prepending(_ component: String) -> BinaryCodingError {
        let path: String
        if codingPath.isEmpty {
            path = component
        } else if codingPath.hasPrefix("[") {
            path = component + codingPath
        } else {
            path = component + "." + codingPath
        }
        return BinaryCodingError(code, message, codingPath: path)
    }

    /// Converts an error thrown by a type's own Codable implementation into a codec error.
    static func wrapping(_ error: any Error) -> BinaryCodingError {
        switch error {
        case let error as BinaryCodingError:
            return error
        case let error as DecodingError:
            switch error {
            case .dataCorrupted(let context), .keyNotFound(_, let context),
                 .typeMismatch(_, let context), .valueNotFound(_, let context):
                return BinaryCodingError(.invalidValue, context.debugDescription,
                                         codingPath: joined(context.codingPath))
            @unknown default:
                return BinaryCodingError(.invalidValue, "\(error)")
            }
        case let error as EncodingError:
            switch error {
            case .invalidValue(_, let context):
                return BinaryCodingError(.invalidValue, context.debugDescription,
                                         codingPath: joined(context.codingPath))
            @unknown default:
                return BinaryCodingError(.invalidValue, "\(error)")
            }
        default:
            return BinaryCodingError(.invalidValue, "\(error)")
        }
    }

    private static func joined(_ path: [any CodingKey]) -> String {
        var result = ""
        for key in path {
            if let index = key.intValue, key.stringValue == "Index \(index)" {
                result += "[\(index)]"
            } else {
                if !result.isEmpty { result += "." }
                result += key.stringValue
            }
        }
        return result
    }
}

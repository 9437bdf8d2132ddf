import CLibUV

/// A numeric IP address and port, such as `127.0.0.1:7946` or `[::1]:7946`.
///
/// Host names other than `localhost` are not resolved: give a numeric address.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The numeric host, e.g. `127.0.0.1` or `::1`.
    public var host: String
    /// The TCP port, 0 to 65535 (0 asks the OS for a free one when listening).
    public var port: Int

    /// Makes an address from a numeric host and a port.
    ///
    /// - Throws: `SocketAddressError` when the host is not a numeric IPv4/IPv6 address or `localhost`,
    ///   or the port is out of range.
    public init(host: String, port: Int) throws(SocketAddressError) {
        guard (0...65535).contains(port) else { throw SocketAddressError("port \(port) is not in 0...65535") }
        let host = host == "localhost" ? "127.0.0.1" : host
        var storage = sockaddr_storage()
        guard Self.fill(&storage, host: host, port: port) == 0 else {
            throw SocketAddressError("'\(host)' is not a numeric IPv4 or IPv6 address")
        }
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT`, or `:PORT` (meaning `0.0.0.0:PORT`).
    ///
    /// - Throws: `SocketAddressError` with what is wrong in the text.
    public init(parsing text: String) throws(SocketAddressError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                text[text.index(after: close)...].hasPrefix(":")
            else { throw SocketAddressError("'\(text)' is not [IPV6]:PORT") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw SocketAddressError("'\(text)' is not HOST:PORT (the port is missing)")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let port = Int(portPart) else { throw SocketAddressError("'\(portPart)' in '\(text)' is not a port number") }
        try self.init(host: hostPart.isEmpty ? "0.0.0.0" : String(hostPart), port: port)
    }

    /// `HOST:PORT`, with brackets around an IPv6 host.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// True for 0.0.0.0 and ::, which a node listens on but cannot be reached at.
    public var isUnspecified: Bool { host == "0.0.0.0" || host == "::" }

    /// Fills `storage` with this address for libuv.
    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>) throws -> T) rethrows -> T {
        var storage = sockaddr_storage()
        _ = Self.fill(&storage, host: host, port: port)
        return try withUnsafePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0) }
        }
    }

    private static func fill(_ storage: inout sockaddr_storage, host: String, port: Int) -> Int32 {
        withUnsafeMutablePointer(to: &storage) { pointer -> Int32 in
            if host.contains(":") {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    uv_ip6_addr(host, Int32(port), $0)
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_addr(host, Int32(port), $0) }
        }
    }

    /// Reads an address that libuv filled in (`uv_tcp_getsockname`, `uv_tcp_getpeername`).
    init?(_ storage: sockaddr_storage) {
        var storage = storage
        var buffer = [CChar](repeating: 0, count: 64)
        guard clibuv_sockaddr_host(&storage, &buffer, buffer.count) == 0 else { return nil }
        let end = buffer.firstIndex(of: 0) ?? buffer.count
        host = String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        port = Int(clibuv_sockaddr_port(&storage))
    }

    /// Reads a socket's local or peer address with `query` (`uv_tcp_getsockname` or
    /// `uv_tcp_getpeername`); nil when libuv has none to give.
    init?(
        of handle: UnsafePointer<uv_tcp_t>,
        _ query: (UnsafePointer<uv_tcp_t>?, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<Int32>?) -> Int32
    ) {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { query(handle, $0, &length) }
        }
        guard rc == 0 else { return nil }
        self.init(storage)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An address that could not be parsed or used.
public struct SocketAddressError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, in a sentence.
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

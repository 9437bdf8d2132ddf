import DevtsRuntime
import Testing

@Suite struct SocketAddressTests {
    @Test(arguments: [
        ("127.0.0.1:80", "127.0.0.1", 80, "127.0.0.1:80"),
        ("[::1]:80", "::1", 80, "[::1]:80"),
        (":80", "0.0.0.0", 80, "0.0.0.0:80"),
        ("localhost:7946", "127.0.0.1", 7946, "127.0.0.1:7946"),
        ("10.1.2.3:0", "10.1.2.3", 0, "10.1.2.3:0"),
        ("[fe80::1:2]:65535", "fe80::1:2", 65535, "[fe80::1:2]:65535"),
    ])
    func parsesValidAddresses(text: String, host: String, port: Int, description: String) throws {
        let address = try SocketAddress(parsing: text)
        #expect(address.host == host)
        #expect(address.port == port)
        #expect(address.description == description)
        // The description parses back to the same address.
        #expect(try SocketAddress(parsing: address.description) == address)
    }

    @Test(arguments: [
        ("nohost", ["'nohost'", "port is missing"]),
        ("1.2.3.4:99999", ["port 99999", "0...65535"]),
        ("example.com:80", ["'example.com'", "not a numeric IPv4 or IPv6 address"]),
        ("1.2.3.4:http", ["'http'", "not a port number"]),
        ("1.2.3.4:", ["not a port number"]),
        ("[::1]", ["'[::1]'", "[IPV6]:PORT"]),
        ("300.1.1.1:80", ["'300.1.1.1'", "not a numeric"]),
        ("1.2.3.4:-1", ["port -1"]),
    ])
    func rejectsInvalidAddressesClearly(text: String, fragments: [String]) {
        let error = #expect(throws: SocketAddressError.self) { try SocketAddress(parsing: text) }
        for fragment in fragments {
            let message = error?.message ?? "no error"
            #expect(message.contains(fragment), "'\(message)' should mention \(fragment)")
        }
        #expect(error?.description == error?.message)
    }

    @Test func unspecifiedAddresses() throws {
        #expect(try SocketAddress(parsing: ":7946").isUnspecified)
        #expect(try SocketAddress(parsing: "[::]:7946").isUnspecified)
        #expect(try !SocketAddress(parsing: "127.0.0.1:7946").isUnspecified)
    }

    @Test func addressesAreValuesThatHashAndCompare() throws {
        let a = try SocketAddress(host: "127.0.0.1", port: 1)
        let b = try SocketAddress(parsing: "127.0.0.1:1")
        let c = try SocketAddress(parsing: "127.0.0.1:2")
        #expect(a == b)
        #expect(a != c)
        #expect(Set([a, b, c]).count == 2)
    }
}

import Devts
import DevtsSpawn
import Foundation

/// Where the tool writes its lines: one JSON object per line with `--json`, readable text otherwise.
///
/// Every line is written whole with `write(2)` under a lock (no stdio buffering), so lines from
/// concurrent tasks never interleave and a reader sees each line as soon as it is printed.
final class Output: Sendable {
    let json: Bool
    private let lock = Locked<Void>(())

    init(json: Bool) {
        self.json = json
    }

    // MARK: Lines of `devts node`

    func started(_ member: Cluster.Member, bootstrapped: Bool, cluster: String) {
        if json {
            emit(.object([
                ("type", .string("started")), ("id", .string(member.id.description)), ("name", .string(member.name)),
                ("address", .string(member.address)), ("bootstrapped", .bool(bootstrapped)),
            ]))
        } else {
            let how = bootstrapped ? "started a new cluster '\(cluster)'" : "joined cluster '\(cluster)'"
            print(line: "started \(member.name) \(member.id) at \(member.address): \(how)")
        }
    }

    func membership(_ kind: Cluster.MembershipChange.Kind, _ member: Cluster.Member) {
        if json {
            emit(.object([
                ("type", .string("member-\(kind.rawValue)")), ("id", .string(member.id.description)),
                ("name", .string(member.name)), ("address", .string(member.address)),
            ]))
        } else {
            print(line: "member \(kind.rawValue): \(member.name) \(member.id) at \(member.address)")
        }
    }

    func event(_ event: Event) {
        let kind: String
        switch event.kind {
        case .broadcast: kind = "broadcast"
        case .direct: kind = "direct"
        case .request: kind = "request"
        }
        if json {
            emit(.object([
                ("type", .string("event")), ("name", .string(event.name)), ("origin", .string(event.origin.description)),
                ("kind", .string(kind)), Self.payloadField(event.payload),
            ]))
        } else {
            print(line: "event '\(event.name)' from \(event.origin) (\(kind)): \(Self.readable(event.payload))")
        }
    }

    func reply(to target: NodeID, _ payload: [UInt8]) {
        if json {
            emit(.object([("type", .string("reply")), ("to", .string(target.description)), Self.payloadField(payload[...])]))
        } else {
            print(line: "reply from \(target): \(Self.readable(payload[...]))")
        }
    }

    func members(_ members: [Cluster.Member]) {
        if json {
            emit(Self.membersObject(members))
        } else {
            print(line: Self.membersTable(members))
        }
    }

    func error(_ message: String) {
        if json {
            emit(.object([("type", .string("error")), ("message", .string(message))]))
        } else {
            print(line: "error: \(message)")
        }
    }

    /// A line for people only (not printed with `--json`).
    func note(_ text: String) {
        if !json { print(line: text) }
    }

    // MARK: Formatting

    static func membersObject(_ members: [Cluster.Member]) -> JSON {
        .object([
            ("type", .string("members")),
            ("members", .array(members.map { member in
                .object([
                    ("id", .string(member.id.description)), ("name", .string(member.name)),
                    ("address", .string(member.address)), ("status", .string(member.status.rawValue)),
                ])
            })),
        ])
    }

    static func membersTable(_ members: [Cluster.Member]) -> String {
        let rows = [["ID", "NAME", "ADDRESS", "STATUS"]]
            + members.map { [$0.id.description, $0.name, $0.address, $0.status.rawValue] }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { column, cell in
                column == 3 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        lines.append("\(members.count) member\(members.count == 1 ? "" : "s")")
        return lines.joined(separator: "\n")
    }

    /// `"payload": text` when the bytes are UTF-8, `"payload_base64": …` otherwise.
    static func payloadField(_ payload: ArraySlice<UInt8>) -> (String, JSON) {
        if let text = String(validating: payload, as: UTF8.self) { return ("payload", .string(text)) }
        return ("payload_base64", .string(Data(payload).base64EncodedString()))
    }

    static func readable(_ payload: ArraySlice<UInt8>) -> String {
        if let text = String(validating: payload, as: UTF8.self) { return text }
        return "base64:" + Data(payload).base64EncodedString()
    }

    // MARK: Writing

    func emit(_ value: JSON) {
        print(line: value.serialized)
    }

    func print(line: String) {
        lock.withLock { _ in Self.writeAll(STDOUT_FILENO, line + "\n") }
    }

    /// Writes `text` to stderr at once (for messages outside the line protocol).
    static func printError(_ text: String) {
        writeAll(STDERR_FILENO, text.hasSuffix("\n") ? text : text + "\n")
    }

    private static func writeAll(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return  // stdout is gone (closed pipe): nothing sensible to do
            }
            bytes = bytes.dropFirst(written)
        }
    }
}

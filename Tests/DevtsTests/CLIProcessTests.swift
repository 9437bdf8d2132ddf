import Foundation
import Testing

/// `devts` run as separate processes, observed through their JSON lines.
@Suite(.serialized)
struct CLIProcessTests {
    /// The `type` of a JSON line.
    private static func type(_ line: JSONLine) -> String? { line["type"] as? String }

    private static func events(_ lines: [JSONLine], named name: String) -> [JSONLine] {
        lines.filter { type($0) == "event" && $0["name"] as? String == name }
    }

    @Test func fourNodeCluster() async throws {
        let group = ProcessGroup()
        defer { group.killAll() }

        // B joins via A, C via B, D via C.
        let (a, aID, aAddress) = try await group.startNode("a")
        let (b, bID, bAddress) = try await group.startNode("b", ["--join", aAddress])
        let (c, cID, cAddress) = try await group.startNode("c", ["--join", bAddress])
        let (d, dID, _) = try await group.startNode("d", ["--join", cAddress])
        let nodes = [a, b, c, d]
        let ids = [aID, bID, cID, dID]
        #expect(a.lines("started").first?["bootstrapped"] as? Bool == true)
        #expect(d.lines("started").first?["bootstrapped"] as? Bool == false)

        // Everyone sees the three others join, then reports 4 members.
        for (node, id) in zip(nodes, ids) {
            try await node.waitFor("member-joined for the 3 others") { lines in
                Set(lines.filter { Self.type($0) == "member-joined" }.compactMap { $0["id"] as? String })
                    == Set(ids).subtracting([id])
            }
            try node.send("members")
            let list = try await node.waitForLine("members")
            let members = try #require(list["members"] as? [JSONLine])
            #expect(members.count == 4, "\(node.label) sees \(members)")
            #expect(Set(members.compactMap { $0["id"] as? String }) == Set(ids))
            #expect(members.allSatisfy { $0["status"] as? String == "alive" && ($0["address"] as? String)?.isEmpty == false })
        }

        // A broadcast reaches all four once; a later marker from the same origin proves no second copy
        // was on its way (broadcasts are FIFO per origin).
        try b.send("emit greeting hello,  wide world ")
        try b.send("emit marker")
        for node in nodes {
            try await node.waitFor("the marker") { !Self.events($0, named: "marker").isEmpty }
            let greetings = Self.events(node.jsonLines, named: "greeting")
            #expect(greetings.count == 1, "\(node.label) got \(greetings.count) greetings")
            #expect(greetings.first?["payload"] as? String == "hello,  wide world ")
            #expect(greetings.first?["origin"] as? String == bID)
            #expect(greetings.first?["kind"] as? String == "broadcast")
            #expect(Self.events(node.jsonLines, named: "marker").first?["payload"] as? String == "")
        }

        // A send reaches only its target; a marker broadcast after it shows the others had their chance.
        try a.send("send \(cID) private just for c")
        try a.send("emit marker2 x")
        for node in nodes {
            try await node.waitFor("marker2") { !Self.events($0, named: "marker2").isEmpty }
        }
        let direct = Self.events(c.jsonLines, named: "private")
        #expect(direct.count == 1)
        #expect(direct.first?["payload"] as? String == "just for c")
        #expect(direct.first?["origin"] as? String == aID)
        #expect(direct.first?["kind"] as? String == "direct")
        for node in [a, b, d] { #expect(Self.events(node.jsonLines, named: "private").isEmpty, "\(node.label) got the send") }

        // A request named echo gets its payload back; a short id prefix works as the target.
        try d.send("request \(aID) echo ping pong")
        let reply = try await d.waitForLine("reply")
        #expect(reply["to"] as? String == aID)
        #expect(reply["payload"] as? String == "ping pong")
        try d.send("request \(bID.prefix(8)) echo ")
        try await d.waitFor("a second reply") { $0.filter { Self.type($0) == "reply" }.count == 2 }
        #expect(d.lines("reply").last?["to"] as? String == bID)
        #expect(d.lines("reply").last?["payload"] as? String == "")

        // Malformed commands print an error line and the node keeps going.
        try c.send("frobnicate now")
        try c.send("send not-an-id name payload")
        try c.send("emit")
        try await c.waitFor("3 error lines") { $0.filter { Self.type($0) == "error" }.count == 3 }
        try c.send("members")
        try await c.waitFor("a second member list") { $0.filter { Self.type($0) == "members" }.count == 2 }

        // A graceful leave: B exits 0 and the others report it left.
        try b.send("leave")
        #expect(try await b.waitForExit() == 0)
        for node in [a, c, d] {
            try await node.waitForLine("member-left") { $0["id"] as? String == bID }
        }

        // A crash: D is SIGKILLed and the others report it failed (after a few reconnect attempts).
        d.kill()
        for node in [a, c] {
            let failed = try await node.waitForLine("member-failed") { $0["id"] as? String == dID }
            #expect(failed["name"] as? String == "d")
        }
        #expect(!a.jsonLines.contains { Self.type($0) == "member-left" && $0["id"] as? String == dID })

        // SIGTERM and SIGINT leave gracefully with exit code 0.
        c.signal(SIGTERM)
        #expect(try await c.waitForExit() == 0)
        try await a.waitForLine("member-left") { $0["id"] as? String == cID }
        a.signal(SIGINT)
        #expect(try await a.waitForExit() == 0)
    }

    @Test func membersAndEmitViaANode() async throws {
        let group = ProcessGroup()
        defer { group.killAll() }
        let (e, eID, eAddress) = try await group.startNode("e")
        let (f, fID, _) = try await group.startNode("f", ["--join", eAddress, "--log-level", "notice"])
        try await e.waitForLine("member-joined") { $0["id"] as? String == fID }

        let json = try await group.run(["members", "--via", eAddress, "--json"])
        #expect(json.code == 0, "\(json.stderr)")
        let line = try #require(json.stdout.first.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? JSONLine })
        #expect(line["type"] as? String == "members")
        let members = try #require(line["members"] as? [JSONLine])
        #expect(Set(members.compactMap { $0["id"] as? String }) == [eID, fID])

        let table = try await group.run(["members", "--via", eAddress])
        #expect(table.code == 0)
        #expect(table.stdout.contains { $0.contains(eID) && $0.contains("e") } && table.stdout.contains { $0.contains(fID) })

        let emitted = try await group.run(["emit", "--via", eAddress, "news", "from outside"])
        #expect(emitted.code == 0, "\(emitted.stderr)")
        for node in [e, f] {
            let event = try await node.waitForLine("event") { $0["name"] as? String == "news" }
            #expect(event["payload"] as? String == "from outside")
            #expect(event["origin"] as? String == eID)
        }

        // End of stdin does not stop a node: F still answers afterwards.
        try f.closeInput()
        try await f.waitForStderr("standard input ended")
        #expect(f.isRunning)
        let again = try await group.run(["members", "--via", eAddress, "--json"])
        #expect(again.stdout.first?.contains(fID) == true)

        // Nothing answering: a clear message and a non-zero exit code.
        let reserved = try ClosedPort()
        let closed = reserved.address.port
        let noMembers = try await group.run(["members", "--via", "127.0.0.1:\(closed)"])
        #expect(noMembers.code != 0)
        #expect(noMembers.stderr.contains("could not get the members from 127.0.0.1:\(closed)"), "\(noMembers.stderr)")
        let noEmit = try await group.run(["emit", "--via", "127.0.0.1:\(closed)", "x", "y", "--json"])
        #expect(noEmit.code != 0)
        #expect(noEmit.stdout.first?.contains(#""type":"error""#) == true, "\(noEmit.stdout)")

        f.signal(SIGTERM)
        #expect(try await f.waitForExit() == 0)
        e.signal(SIGTERM)
        #expect(try await e.waitForExit() == 0)
    }

    @Test func demoRunsToTheEnd() async throws {
        let group = ProcessGroup()
        defer { group.killAll() }
        let demo = try await group.run(["demo"], within: .seconds(40))
        #expect(demo.code == 0, "\(demo.stdout.joined(separator: "\n"))\n\(demo.stderr)")
        let text = demo.stdout.joined(separator: "\n")
        for expected in ["Step 1 of 6", "member-joined: gamma", "gamma › members: alpha, beta, gamma (3 members)",
                         "gamma › event 'greeting'", "reply from beta", "member-left: beta", "Done in"] {
            #expect(text.contains(expected), "missing '\(expected)'")
        }
    }

    @Test func requireJoinWithNothingToJoinFails() async throws {
        let group = ProcessGroup()
        defer { group.killAll() }
        let reserved = try ClosedPort()
        let closed = reserved.address.port
        let node = try group.start("lonely", ["node", "--json", "--join", "127.0.0.1:\(closed)", "--require-join"])
        let code = try await node.waitForExit()
        #expect(code == 1)
        let error = try #require(node.lines("error").first)
        #expect((error["message"] as? String)?.contains("no cluster address answered") == true, "\(error)")
        #expect(node.lines("started").isEmpty)
        #expect(node.stderrText.contains("could not start the node"))
    }

    @Test func badArgumentsAreRefusedClearly() async throws {
        let group = ProcessGroup()
        defer { group.killAll() }
        let badAddress = try await group.run(["node", "--listen", "localhost"])
        #expect(badAddress.code != 0)
        #expect(badAddress.stderr.contains("'localhost' is not HOST:PORT (the port is missing); expected HOST:PORT"), "\(badAddress.stderr)")

        let badHost = try await group.run(["node", "--join", "example.com:7946"])
        #expect(badHost.code != 0)
        #expect(badHost.stderr.contains("is not a numeric IPv4 or IPv6 address"), "\(badHost.stderr)")

        let requireJoinAlone = try await group.run(["node", "--require-join"])
        #expect(requireJoinAlone.code != 0)
        #expect(requireJoinAlone.stderr.contains("--require-join needs at least one --join"), "\(requireJoinAlone.stderr)")

        let noVia = try await group.run(["members"])
        #expect(noVia.code != 0)
        #expect(noVia.stderr.contains("--via"), "\(noVia.stderr)")

        let unknown = try await group.run(["nodes"])
        #expect(unknown.code != 0)
    }
}


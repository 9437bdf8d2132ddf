@testable import Devts
import DevtsRuntime
import Testing

@Suite("Simultaneous connects")
struct SimultaneousConnectTests {
    @Test("two nodes dialling each other at once end with one connection, the same on both sides")
    func oneConnectionSurvives() async throws {
        // Two separate one-node clusters of the same name, then each dials the other at once.
        let a = try await Node.start(config(name: "a"))
        let b = try await Node.start(config(name: "b"))
        let (addressA, addressB) = (await a.address, await b.address)
        async let dialledByA = a.dial(addressB, role: .member, timeout: .seconds(2))
        async let dialledByB = b.dial(addressA, role: .member, timeout: .seconds(2))
        let (linkOfA, linkOfB) = try await (dialledByA, dialledByB)

        // Each side keeps exactly one link, and it is the same TCP connection: the one the lower id opened.
        let settled = await waitUntil {
            let linksOfA = await a.links.count
            let linksOfB = await b.links.count
            return linksOfA == 1 && linksOfB == 1
        }
        #expect(settled)
        let keptByA = try #require(await a.memberLinks[b.id])
        let keptByB = try #require(await b.memberLinks[a.id])
        let lowerOpenedIt = a.id < b.id
        #expect(keptByA.dialled == lowerOpenedIt)
        #expect(keptByB.dialled == !lowerOpenedIt)
        #expect(keptByA.connection.localAddress == keptByB.connection.remoteAddress)
        // ...and it is one of the two first connections: nothing was lost and reconnected meanwhile.
        #expect(lowerOpenedIt ? keptByA === linkOfA : keptByB === linkOfB)

        // Both report each other once, and events flow over the surviving connection.
        #expect(await a.members.count == 2)
        #expect(await b.members.count == 2)
        let received = Collector<String>()
        await b.on("hi") { received.append($0.text ?? "") }
        try await a.broadcast("hi", Array("there".utf8))
        #expect(await waitUntil { received.count == 1 })
        try await shutDownAll([a, b])
    }
}

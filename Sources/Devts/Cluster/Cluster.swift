import DevtsRuntime

/// Cluster concepts: members, their status, and changes to the membership.
///
/// Membership is a full mesh: every member holds one TCP connection to every other. A node joins
/// through any member's cluster port; that member sends the member list, the joiner connects to each
/// member and is announced to all. A connection that is lost and cannot be re-established makes the
/// member *failed*; a member that leaves says so first and is reported *left* at once.
public enum Cluster {
    /// A node of the cluster as another node sees it.
    public struct Member: Hashable, Sendable, Codable, CustomStringConvertible {
        /// The member's id, new each time it starts.
        public let id: NodeID
        /// Its name (from its configuration; not necessarily unique).
        public let name: String
        /// The address other nodes reach it at: its cluster port.
        public let address: String
        /// Its status as this node last saw it.
        public var status: Status

        /// Makes a member record (nodes make these; tests and tools may too).
        public init(id: NodeID, name: String, address: String, status: Status) {
            self.id = id
            self.name = name
            self.address = address
            self.status = status
        }

        public var description: String { "\(name) (\(id.short)) at \(address), \(status)" }
    }

    /// Where a member stands.
    public enum Status: String, Sendable, Codable, CustomStringConvertible {
        /// Connected and taking part.
        case alive
        /// Its connection was lost; the node is trying to re-establish it.
        case unreachable
        /// It left gracefully.
        case left
        /// Its connection was lost and could not be re-established.
        case failed

        public var description: String { rawValue }
    }

    /// A change in membership, as observed by one node.
    public struct MembershipChange: Sendable, Equatable, CustomStringConvertible {
        /// What happened.
        public enum Kind: String, Sendable {
            /// It connected and became a member.
            case joined
            /// It left gracefully.
            case left
            /// Its connection was lost and could not be re-established.
            case failed
        }

        /// What happened.
        public let kind: Kind
        /// The member it happened to, with its status after the change.
        public let member: Member

        public var description: String { "\(member.name) (\(member.id.short)) \(kind.rawValue)" }
    }
}

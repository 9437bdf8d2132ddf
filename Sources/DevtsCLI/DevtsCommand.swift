import ArgumentParser

/// The `devts` tool.
@main
struct DevtsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devts",
        abstract: "Devts: a cluster of nodes that join through any member and exchange named events.",
        discussion: """
            Start with `devts demo` for a guided tour on this machine. Run a node with `devts node` \
            (commands on stdin, JSON lines on stdout with --json); query or use a running cluster from \
            outside with `devts members --via` and `devts emit --via`. Logs go to stderr. \
            Every command has --help.
            """,
        subcommands: [NodeCommand.self, MembersCommand.self, EmitCommand.self, DemoCommand.self])
}

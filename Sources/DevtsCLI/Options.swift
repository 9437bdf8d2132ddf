import ArgumentParser
import Devts
import DevtsRuntime
import Logging

/// Parses a `HOST:PORT` argument, with the reason in the error when it is not one.
func parseAddress(_ text: String) throws -> SocketAddress {
    do {
        return try SocketAddress(parsing: text)
    } catch {
        throw ValidationError("\(error.message); expected HOST:PORT with a numeric IPv4 host, [IPv6] or localhost, such as 127.0.0.1:7946")
    }
}

/// The levels of `--log-level`.
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error, critical

    var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

/// Options shared by the commands that talk to a cluster.
struct ClusterOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The cluster's name; nodes and tools of another cluster are refused.", valueName: "NAME"))
    var cluster: String = "devts"

    func validate() throws {
        guard !cluster.isEmpty, cluster.utf8.count <= 255 else {
            throw ValidationError("--cluster must be 1 to 255 bytes long")
        }
    }
}

/// Options for logging to stderr.
struct LogOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "How much to log to stderr: trace, debug, info, notice, warning, error or critical. At info a node logs its id and cluster port when it starts, and each member joining, leaving or failing.",
        valueName: "LEVEL"))
    var logLevel: LogLevel = .info

    func makeLogger(label: String = "devts") -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = logLevel.level
        return logger
    }
}

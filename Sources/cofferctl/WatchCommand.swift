import ArgumentParser
import Foundation

/// `cofferctl watch NAME|GLOB...`: one line per change, for scripts. Runs
/// on coffer.sock as the caller, so the policy decides what it hears.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one line per change to the secrets named (names or globs), until interrupted.",
        discussion: """
            Connects to coffer.sock as you (the policy needs a watch grant). Each line: EVENT NAME VERSION STAGE \
            (put, rotate, delete; reload alone when the policy or the store was read again: list to catch up). \
            With --json, cofferd's event lines as sent. Never a value.
            """
    )

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Option(help: "End after this many changes (a script waiting for the next one).") var count: Int?
    @Argument(help: "Names or globs (* within a segment, ** across).") var names: [String]

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let watch = try SecretWatch(socket: connection.serviceSocketPath, names: names)
            var heard = 0
            while count.map({ heard < $0 }) ?? true {
                let (event, line) = try watch.next()
                heard += 1
                // Written at once, line by line: a pipe gets each as it comes.
                let text = connection.json ? line : Array(Self.text(event).utf8)
                FileHandle.standardOutput.write(Data(text + [UInt8(ascii: "\n")]))
            }
        }
    }

    static func text(_ event: JSONAnswer) -> String {
        [event["event"], event["name"], event["version"], event["stage"]].compactMap { $0?.description }.joined(separator: " ")
    }
}

/// A `watch` on coffer.sock: the answer checked, then the event lines.
final class SecretWatch {
    private var connection: AdminConnection

    init(socket: String, names: [String]) throws(ClientFailure) {
        connection = try AdminConnection(path: socket)
        let (answer, _) = try connection.call(["id": "watch", "op": "watch", "names": names])
        guard answer["ok"]?.bool == true else {
            throw ClientFailure.fromWire(code: answer["error"]?["code"]?.string ?? "INTERNAL",
                                         message: answer["error"]?["message"]?.string ?? "no message")
        }
    }

    var descriptor: Int32 { connection.descriptor }
    var hasBufferedEvent: Bool { connection.hasBufferedLine }

    /// The next event line; throws when cofferd closes the connection.
    func next() throws(ClientFailure) -> (JSONAnswer, [UInt8]) {
        while true {
            let (event, line) = try connection.nextAnswer()
            if event["event"] != nil { return (event, line) }
        }
    }
}

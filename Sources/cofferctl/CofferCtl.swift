import ArgumentParser
import Foundation

@main
struct CofferCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cofferctl",
        abstract: "Operate a Coffer daemon over its admin socket.",
        discussion: """
            Secret values are read from standard input or --from-file, never from the command line \
            (argv is visible to every user in /proc).
            Exit status: 0 ok, 1 verify did not match, 2 bad request, 3 not found, 4 denied, \
            5 cofferd unreachable, 6 other error, 64 bad usage.
            """,
        subcommands: [
            Put.self, Rotate.self, Promote.self, Rollback.self, Get.self, Verify.self, List.self, Describe.self, History.self,
            Delete.self, TokenCreate.self, RotateMasterKey.self, SealCommand.self, Unseal.self, Restore.self, Reload.self, Status.self,
            Audit.self, Import.self, Export.self, Init.self, Ping.self, Watch.self, Exec.self,
        ]
    )

    // Given before or after the subcommand: `cofferctl --dev DIR get x` and
    // `cofferctl get --dev DIR x` both work.
    @OptionGroup var connection: ConnectionOptions
}

/// Where cofferd listens, and how to print answers.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "The socket to use (default: $COFFER_SOCKET, else /run/coffer/admin.sock).")
    var socket: String?

    @Option(name: .long, help: "Use the development instance in this directory (DIR/run/admin.sock).")
    var dev: String?

    @Flag(name: .long, help: "Print cofferd's JSON answer instead of text.")
    var json = false

    func validate() throws {
        if socket != nil && dev != nil { throw ValidationError("give --socket or --dev, not both") }
    }

    var socketPath: String {
        if let socket { return socket }
        if let dev { return dev + "/run/admin.sock" }
        return ProcessInfo.processInfo.environment["COFFER_SOCKET"] ?? "/run/coffer/admin.sock"
    }

    /// coffer.sock, for the commands a service runs as itself (`watch`,
    /// `exec`): the policy applies to the caller. --socket, else the dev
    /// instance's, else /run/coffer/coffer.sock ($COFFER_SOCKET names the
    /// admin socket, so it does not apply here).
    var serviceSocketPath: String {
        if let socket { return socket }
        if let dev { return dev + "/run/coffer.sock" }
        return "/run/coffer/coffer.sock"
    }

    /// Sends one request; returns the answer when it is ok, else throws the
    /// failure with its exit status.
    /// With --json, the answer line is printed as cofferd sent it.
    func perform(_ request: [String: Any]) throws(ClientFailure) -> JSONAnswer {
        try perform(request, printing: json)
    }

    /// The same, never printing (progress polls).
    func quietly(_ request: [String: Any]) throws(ClientFailure) -> JSONAnswer {
        try perform(request, printing: false)
    }

    private func perform(_ request: [String: Any], printing: Bool) throws(ClientFailure) -> JSONAnswer {
        var connection = try AdminConnection(path: socketPath)
        var withID = request
        withID["id"] = 1
        let (answer, line) = try connection.call(withID)
        if answer["ok"]?.bool == true {
            if printing { FileHandle.standardOutput.write(Data(line) + Data("\n".utf8)) }
            return answer
        }
        throw ClientFailure.fromWire(code: answer["error"]?["code"]?.string ?? "INTERNAL",
                                     message: answer["error"]?["message"]?.string ?? "no message")
    }
}

/// A secret value from stdin or a file.
struct ValueOptions: ParsableArguments {
    @Option(name: .customLong("from-file"), help: "Read the value from this file instead of standard input.")
    var fromFile: String?

    @Flag(name: .long, help: "Send the bytes exactly as read (value_base64); default is UTF-8 text with one trailing newline removed.")
    var binary = false

    /// The request members for the value: `value` or `value_base64`.
    /// Typed at a terminal, it is read without echo, and twice when it is
    /// to be stored (`confirm`).
    func read(for name: String, confirm: Bool) throws(ClientFailure) -> [String: Any] {
        var data: Data
        if let fromFile {
            guard let contents = FileManager.default.contents(atPath: fromFile) else {
                throw ClientFailure(.usage, "cannot read \(fromFile)")
            }
            data = contents
        } else if TerminalValue.isTerminal {
            data = try TerminalValue.read(prompt: "Value for \(name): ", confirm: confirm)
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        if binary { return ["value_base64": data.base64EncodedString()] }
        if data.last == UInt8(ascii: "\n") { data.removeLast() }
        if data.last == UInt8(ascii: "\r") { data.removeLast() }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ClientFailure(.usage, "the value is not UTF-8 text; use --binary")
        }
        return ["value": text]
    }
}

/// Runs a command body, turning a failure into its message and exit status.
func run(_ body: () throws(ClientFailure) -> Void) throws {
    do {
        try body()
    } catch {
        FileHandle.standardError.write(Data("cofferctl: \(error.message)\n".utf8))
        throw ExitCode(error.kind.rawValue)
    }
}

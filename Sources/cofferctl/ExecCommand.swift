import ArgumentParser
import Foundation
import LockedMemory
import Syscalls

/// `cofferctl exec`: runs a program with secrets in its environment or in
/// private files, for programs that know nothing of Coffer; with
/// `--on-change`, watches them and restarts or signals the program when
/// one changes.
struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a program with secrets in its environment (--env) or in private files (--file).",
        discussion: """
            Reads the secrets from coffer.sock as you: the policy applies as usual. Values never appear on a command \
            line. --file values are 0400 files in a private directory (on $XDG_RUNTIME_DIR or /dev/shm), removed when \
            the program ends; the variable holds the file's path. Signals cofferctl receives go to the program, and \
            cofferctl ends as the program did (its exit status, or its signal). \
            --on-change restart: when a secret changes, stop the program (SIGTERM) and start it again with the new \
            values; signal:NAME (e.g. signal:HUP): rewrite the files and send it that signal; exit: stop it and end.
            """
    )

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Option(name: .customLong("env"), help: "VAR=NAME: the value of secret NAME in environment variable VAR (repeatable).")
    var environment: [String] = []
    @Option(name: .customLong("file"), help: "VAR=NAME: the value in a 0400 file; VAR holds its path (repeatable).")
    var files: [String] = []
    @Option(name: .customLong("on-change"), help: "restart, signal:NAME, or exit.")
    var onChange: String?
    @Argument(parsing: .postTerminator, help: "-- PROGRAM ARGS...") var command: [String] = []

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            guard !command.isEmpty else { throw ClientFailure(.usage, "give the program after --: cofferctl exec --env V=NAME -- PROGRAM") }
            var mappings: [SecretMapping] = []
            for text in environment { mappings.append(try SecretMapping(text, asFile: false)) }
            for text in files { mappings.append(try SecretMapping(text, asFile: true)) }
            guard !mappings.isEmpty else { throw ClientFailure(.usage, "give at least one --env or --file") }
            guard Set(mappings.map(\.variable)).count == mappings.count else {
                throw ClientFailure(.usage, "each variable once")
            }
            let action = try onChange.map { (text) throws(ClientFailure) in try ChangeAction(text) }
            let supervisor = try ProgramSupervisor(command: command, mappings: mappings,
                                                   socket: connection.serviceSocketPath, onChange: action)
            supervisor.runToEnd()
        }
    }
}

/// What `--on-change` does.
enum ChangeAction: Equatable {
    case restart
    case signal(Int32)
    case exit

    init(_ text: String) throws(ClientFailure) {
        switch text {
        case "restart": self = .restart
        case "exit": self = .exit
        default:
            let signals: [String: Int32] = ["HUP": SIGHUP, "USR1": SIGUSR1, "USR2": SIGUSR2, "TERM": SIGTERM, "INT": SIGINT]
            guard text.hasPrefix("signal:"), let number = signals[String(text.dropFirst("signal:".count))] else {
                throw ClientFailure(.usage, "--on-change: restart, exit, or signal:HUP|USR1|USR2|TERM|INT")
            }
            self = .signal(number)
        }
    }
}

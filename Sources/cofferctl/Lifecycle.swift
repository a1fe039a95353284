import ArgumentParser
import Foundation

/// put's and rotate's options about the new version: a generated value,
/// the hash of a hashed secret, the grace period and the expiry.
struct NewVersionOptions: ParsableArguments {
    @Flag(help: "Let cofferd generate the value (nothing is read from stdin). A generated value of a hashed secret is printed once.")
    var generate = false
    @Option(help: "With --generate: how many random bytes (16 to 1024; default 32).") var bytes: Int?
    @Option(help: "With --generate: hex, base64 (default) or token (PREFIX_<hex>).") var format: String?
    @Option(help: "With --generate --format token: the prefix (default coffer).") var prefix: String?
    @Option(help: "For protection hashed: scrypt (default; passwords) or hmac-sha256 (random tokens).") var hash: String?
    @Option(help: "How long verify keeps accepting the previous version after a rotation: seconds, or 30m, 12h, 7d.")
    var grace: String?
    @Option(help: "When it stops being served: +30d, +12h, seconds since the epoch, an ISO 8601 time, or never.")
    var expires: String?

    func apply(to request: inout [String: Any]) throws(ClientFailure) {
        if generate {
            var spec: [String: Any] = [:]
            if let bytes { spec["bytes"] = bytes }
            if let format { spec["format"] = format }
            if let prefix { spec["prefix"] = prefix }
            request["generate"] = spec
        } else if bytes != nil || format != nil || prefix != nil {
            throw ClientFailure(.usage, "--bytes, --format and --prefix go with --generate")
        }
        if let hash { request["hash"] = hash }
        if let grace { request["grace_seconds"] = try DurationArgument.seconds(in: grace) }
        if let expires { request["expires_at"] = try Expiry.parse(expires) }
    }

    /// Sends `request` with the value (read or generated) and prints what
    /// a person needs: the new version, and a generated hashed value, once.
    func send(_ request: [String: Any], value: ValueOptions, over connection: ConnectionOptions, verb: String, name: String) throws(ClientFailure) {
        var request = request
        try apply(to: &request)
        let answer: JSONAnswer
        if generate {
            answer = try connection.perform(request)
        } else {
            request.merge(try value.read(for: name, confirm: true)) { $1 }
            answer = try connection.perform(request)
        }
        if connection.json { return }
        let stage = answer["stage"]?.string == "pending" ? " (pending: promote it to make it current)" : ""
        FileHandle.standardError.write(Data("\(verb) \(name) version \(text(answer["version"]))\(stage)\n".utf8))
        if let shown = answer["value"]?.string {
            FileHandle.standardError.write(Data("cofferctl: this value is shown once and stored only hashed:\n".utf8))
            print(shown)
        }
    }
}

enum DurationArgument {
    /// "90", "30s", "15m", "12h", "7d" as seconds.
    static func seconds(in text: String) throws(ClientFailure) -> Int64 {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var digits = Substring(text)
        var unit: Int64 = 1
        if let last = text.last, let factor = units[last] {
            digits = text.dropLast()
            unit = factor
        }
        guard let number = Int64(digits), number >= 0, number <= Int64.max / unit else {
            throw ClientFailure(.usage, "not a duration: use seconds, or a number with s, m, h or d")
        }
        return number * unit
    }
}

enum Expiry {
    /// Seconds since the epoch, or NSNull for "never" (clears it).
    static func parse(_ text: String) throws(ClientFailure) -> Any {
        if text == "never" { return NSNull() }
        if text.hasPrefix("+") {
            return Int64(Date().timeIntervalSince1970) + (try DurationArgument.seconds(in: String(text.dropFirst())))
        }
        if let seconds = Int64(text) { return seconds }
        if let date = ISO8601DateFormatter().date(from: text) { return Int64(date.timeIntervalSince1970) }
        throw ClientFailure(.usage, "not an expiry: use +30d, seconds since the epoch, an ISO 8601 time, or never")
    }
}

struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make a secret's pending version current (the old current becomes previous).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument var name: String

    func run() throws {
        try moveStage("promote", name, over: connection, saying: "promoted")
    }
}

struct Rollback: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make a secret's previous version current again.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument var name: String

    func run() throws {
        try moveStage("rollback", name, over: connection, saying: "rolled back")
    }
}

/// promote and rollback: one request, and which version is current now.
func moveStage(_ op: String, _ name: String, over connection: ConnectionOptions, saying verb: String) throws {
    try cofferctl.run { () throws(ClientFailure) in
        let answer = try connection.perform(["op": op, "name": name])
        if !connection.json { print("\(verb) \(name): version \(text(answer["version"])) is current") }
    }
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a secret's versions, stages, and who made them when (never values).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument var name: String

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let answer = try connection.perform(["op": "history", "name": name])
            if connection.json { return }
            let rows = answer["versions"]?.array.map { v in
                [text(v["version"]), v["stages"]?.array.compactMap(\.string).joined(separator: ",") ?? "",
                 formatTime(v["created_at"]), text(v["created_by"]), text(v["key_id"])]
            } ?? []
            printTable(["VERSION", "STAGES", "CREATED", "BY", "KEY"], rows)
            print("stages last changed \(formatTime(answer["stages_changed_at"])) by \(text(answer["stages_changed_by"]))")
        }
    }
}

struct TokenCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-create",
        abstract: "Create a PREFIX_<64 hex> token, stored hashed; it is printed once, here, and never again.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument(help: "The token's name, e.g. tokens/ci-deploy.") var name: String
    @Option(help: "The token's prefix (default coffer).") var prefix: String?
    @Option(help: "When it stops verifying: +30d, seconds since the epoch, an ISO 8601 time.") var expires: String?
    @Option(name: .customLong("operation"), help: "An operation it allows (repeatable); verify --operation checks it.")
    var operations: [String] = []

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "token.create", "name": name]
            if let prefix { request["prefix"] = prefix }
            if let expires { request["expires_at"] = try Expiry.parse(expires) }
            if !operations.isEmpty { request["operations"] = operations }
            let answer = try connection.perform(request)
            if connection.json { return }
            FileHandle.standardError.write(Data("created \(name) version \(text(answer["version"])); the token is shown once:\n".utf8))
            print(text(answer["token"]))
        }
    }
}

struct SealCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal", abstract: "Wipe every master key from cofferd's memory now; reveals and writes fail until unseal.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            _ = try connection.perform(["op": "seal"])
            if !connection.json { print("sealed") }
        }
    }
}

struct Unseal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load the master keys again (the configured key, or --key-file), checked against the store.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Option(name: .customLong("key-file"), help: "A key file cofferd can read, used instead of the configured key.")
    var keyFile: String?

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "unseal"]
            if let keyFile { request["key_file"] = absolute(keyFile) }
            let answer = try connection.perform(request)
            if !connection.json { print("unsealed; current key \(text(answer["key_id"]))") }
        }
    }
}

struct RotateMasterKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-master-key",
        abstract: "Re-seal every record under a new master key (generated, or --key-file) while cofferd keeps serving.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Option(name: .customLong("key-file"), help: "The new key: a file cofferd can read (0600, owned by its user). Default: generate one.")
    var keyFile: String?

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let request: [String: String] = keyFile.map { ["op": "rotate-master-key", "key_file": absolute($0)] }
                ?? ["op": "rotate-master-key"]
            let connection = self.connection
            let answer = try withProgress { () throws(ClientFailure) -> JSONAnswer in
                var full: [String: Any] = request
                if request["key_file"] == nil { full["generate"] = true }
                return try connection.perform(full)
            }
            if connection.json { return }
            print("master key rotated: \(text(answer["key_id"])) is current; \(text(answer["resealed"])) records re-sealed")
        }
    }

    /// Runs the request on its own thread while this one polls `status`
    /// on a second connection and draws a progress bar on a terminal.
    private func withProgress(_ body: @escaping @Sendable () throws(ClientFailure) -> JSONAnswer) throws(ClientFailure) -> JSONAnswer {
        let result = LockedResult()
        let thread = Thread { result.set(Result { () throws(ClientFailure) in try body() }) }
        thread.start()
        let drawing = isatty(2) == 1 && !connection.json
        while result.get() == nil {
            if drawing, let status = try? connection.quietly(["op": "status"]),
               let rotation = status["keys"]?["rotation"], rotation["state"]?.string == "running" {
                let done = rotation["done"]?.integer ?? 0
                let total = max(rotation["total"]?.integer ?? 0, 1)
                let filled = Int(30 * done / total)
                let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: 30 - filled)
                FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) \(rotation["phase"]?.string ?? "")   ".utf8))
            }
            usleep(100_000)
        }
        if drawing { FileHandle.standardError.write(Data("\n".utf8)) }
        return try result.get()!.get()
    }
}

/// The answer of the request running on the other thread.
final class LockedResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<JSONAnswer, ClientFailure>?
    func set(_ v: Result<JSONAnswer, ClientFailure>) { lock.withLock { value = v } }
    func get() -> Result<JSONAnswer, ClientFailure>? { lock.withLock { value } }
}

/// cofferd resolves paths itself, from its own working directory.
func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild an empty store from the PostgreSQL mirror; rows that fail their checks are skipped and reported.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Flag(name: .customLong("from-postgres"), help: "Restore from the mirror cofferd is configured with (the only source).")
    var fromPostgres = false
    @Option(name: .customLong("store-id"), help: "Which store, when the database holds more than one.") var storeID: String?

    func validate() throws {
        if !fromPostgres { throw ValidationError("say where from: --from-postgres") }
    }

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "restore", "from": "postgres"]
            if let storeID { request["store_id"] = storeID }
            let answer = try connection.perform(request)
            if connection.json { return }
            print("restored \(text(answer["restored"])) secrets of store \(text(answer["store_id"]))")
            let refused = answer["refused"]?.array.compactMap(\.string) ?? []
            if !refused.isEmpty {
                FileHandle.standardError.write(Data("cofferctl: refused (failed their checks, not served): \(refused.joined(separator: ", "))\n".utf8))
            }
        }
    }
}

import ArgumentParser
import Foundation

struct Put: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Store a new version of a secret (value from stdin or --from-file).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @OptionGroup var value: ValueOptions
    @OptionGroup var version: NewVersionOptions
    @Argument(help: "The secret's name, e.g. db/password.") var name: String
    @Option(help: "A label for what the secret is (password, api-key, …).") var kind: String?
    @Option(help: "sealed (can be revealed; the default) or hashed (verify-only).") var protection: String?
    @Option(name: .customLong("principal"), help: "Only this principal reads it (repeatable): user:NAME, uid:N, group:NAME, gid:N, unit:GLOB.")
    var principals: [String] = []
    @Option(name: .customLong("socket-scope"), help: "Serve it only through these sockets (repeatable): service, credentials.")
    var sockets: [String] = []

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "put", "name": name]
            if let kind { request["kind"] = kind }
            if let protection { request["protection"] = protection }
            if !principals.isEmpty { request["principals"] = principals }
            if !sockets.isEmpty { request["scope"] = ["sockets": sockets] }
            try version.send(request, value: value, over: connection, verb: "stored", name: name)
        }
    }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a secret's value to standard output.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument var name: String
    @Option(help: "A specific version instead of the current one.") var version: UInt64?
    @Option(help: "current (default), previous or pending.") var stage: String?
    @Option(help: "Printed instead when the secret does not exist (not for secrets: it is on the command line).")
    var `default`: String?

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "get", "name": name]
            if let version { request["version"] = version }
            if let stage { request["stage"] = stage }
            if let `default` { request["default"] = `default` }
            let answer = try connection.perform(request)
            if connection.json { return }
            var bytes: Data
            if let text = answer["value"]?.string {
                bytes = Data(text.utf8)
            } else if let encoded = answer["value_base64"]?.string, let decoded = Data(base64Encoded: encoded) {
                bytes = decoded
            } else {
                throw ClientFailure(.failed, "cofferd's answer has no value")
            }
            // A newline only for a person at a terminal, so `$(cofferctl get …)`
            // and pipes get the exact bytes.
            if isatty(1) == 1 { bytes.append(UInt8(ascii: "\n")) }
            FileHandle.standardOutput.write(bytes)
            bytes.resetBytes(in: 0..<bytes.count)
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a value (from stdin or --from-file) against a secret without revealing it. Exit 0 on match, 1 on no match.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @OptionGroup var value: ValueOptions
    @Argument var name: String
    @Option(help: "Check this version only.") var version: UInt64?
    @Option(help: "Check this stage only (current, previous, pending); default: current, and previous during the grace period.")
    var stage: String?
    @Option(help: "For a token: match only if it allows this operation.") var operation: String?

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "verify", "name": name]
            if let version { request["version"] = version }
            if let stage { request["stage"] = stage }
            if let operation { request["operation"] = operation }
            request.merge(try value.read(for: name, confirm: false)) { $1 }
            let answer = try connection.perform(request)
            let match = answer["match"]?.bool == true
            if !connection.json { print(match ? "match" : "no match") }
            if !match { throw ClientFailure(.noMatch, "the value does not match \(name)") }
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List secret names and metadata (never values).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Option(help: "Only names starting with this.") var prefix: String?

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "list"]
            if let prefix { request["prefix"] = prefix }
            let answer = try connection.perform(request)
            if connection.json { return }
            let rows = (answer["secrets"]?.array ?? []).map { s in
                [text(s["name"]), text(s["kind"]), text(s["protection"]), text(s["version"]),
                 formatTime(s["updated_at"]), text(s["updated_by"])]
            }
            printTable(["NAME", "KIND", "PROTECTION", "VERSION", "UPDATED", "BY"], rows)
        }
    }
}

struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one secret's metadata and versions (never values).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument var name: String

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let answer = try connection.perform(["op": "describe", "name": name])
            if connection.json { return }
            for key in ["name", "kind", "protection", "version", "versions"] {
                print("\(key): \(text(answer[key]))")
            }
            let rows = (answer["history"]?.array ?? []).map { v in
                [text(v["version"]), formatTime(v["created_at"]), text(v["created_by"]), text(v["key_id"])]
            }
            printTable(["VERSION", "CREATED", "BY", "KEY"], rows)
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete secrets with all their versions: all named, or none.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument(help: "One or more names.") var names: [String]

    func validate() throws {
        if names.isEmpty { throw ValidationError("name at least one secret") }
    }

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let request: [String: Any] = names.count == 1 ? ["op": "delete", "name": names[0]] : ["op": "delete", "names": names]
            let answer = try connection.perform(request)
            if connection.json { return }
            print("deleted \(text(answer["deleted"]))")
        }
    }
}

struct Rotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a new value (from stdin, --from-file or --generate) the current version of an existing secret; the old one becomes previous.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @OptionGroup var value: ValueOptions
    @OptionGroup var version: NewVersionOptions
    @Flag(help: "Stage the new version as pending instead; promote makes it current.") var pending = false
    @Argument(help: "The secret's name.") var name: String

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "rotate", "name": name]
            if pending { request["pending"] = true }
            try version.send(request, value: value, over: connection, verb: "rotated", name: name)
        }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read the policy file again (a broken file is refused and the old policy stays).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let answer = try connection.perform(["op": "reload"])
            if connection.json { return }
            print("policy reloaded: \(answer["rules"]?.description ?? "?") rules, \(answer["operators"]?.description ?? "?") operators")
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's state: store, keys, memory protection, audit.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let answer = try connection.perform(["op": "status"])
            if connection.json { return }
            if case .object(let members) = answer {
                printTree(members.filter { $0.key != "id" && $0.key != "ok" }, indent: "")
            }
        }
    }
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that cofferd answers.")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            _ = try connection.perform(["op": "ping"])
            if !connection.json { print("pong") }
        }
    }
}

func text(_ value: JSONAnswer?) -> String {
    value?.description ?? ""
}

func formatTime(_ value: JSONAnswer?) -> String {
    guard let seconds = value?.integer else { return "" }
    return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
}

func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        let cells = row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}

func printTree(_ object: [String: JSONAnswer], indent: String) {
    for key in object.keys.sorted() {
        if case .object(let nested) = object[key]! {
            print("\(indent)\(key):")
            printTree(nested, indent: indent + "  ")
        } else {
            print("\(indent)\(key): \(object[key]!)")
        }
    }
}

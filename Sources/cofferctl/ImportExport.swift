import ArgumentParser
import Foundation
import LockedMemory

/// `cofferctl import FILE`: secrets from an env file (`NAME=VALUE` lines,
/// the pgmi params-file habit) or a JSON object (`{"name": "value"}`), read
/// from the file or standard input (`-`), never from the command line.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store many secrets from an env file (NAME=VALUE lines) or a JSON object, from a file or stdin (-).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Argument(help: "The file to read, or - for standard input.") var file: String
    @Option(help: "env or json (default: json when the file ends in .json, else env).") var format: String?
    @Option(help: "Put this before every name (e.g. app/).") var prefix: String = ""

    /// Requests stay well under the 64 KiB line limit; each batch is one
    /// all-or-none commit.
    static let batchBytes = 48 * 1024

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: file) else { throw ClientFailure(.usage, "cannot read \(file)") }
                data = contents
            }
            let isJSON = (format ?? (file.hasSuffix(".json") ? "json" : "env")) == "json"
            let items = try (isJSON ? Self.parseJSON(data) : Self.parseEnv(data).map { ["name": $0.0, "value": $0.1] })
                .map { item in item.merging(["name": prefix + (item["name"] ?? "")]) { $1 } }
            guard !items.isEmpty else { throw ClientFailure(.usage, "\(file) holds no secrets") }
            guard Set(items.compactMap { $0["name"] }).count == items.count else {
                throw ClientFailure(.usage, "a name appears twice; nothing was imported")
            }
            // Batches are sized from their exact JSON encoding, so none can
            // pass the daemon's line limit; each is one all-or-none commit.
            var batches: [[[String: String]]] = [[]]
            var size = 0
            for item in items {
                // Measured, then wiped: the item holds its value.
                var encoded = try? RequestJSON.encode(item)
                let itemSize = encoded?.count ?? Int.max
                encoded?.wipe()
                guard itemSize < Self.batchBytes else {
                    throw ClientFailure(.usage, "the value of \(item["name"] ?? "?") is too large to import; nothing was imported")
                }
                if size + itemSize > Self.batchBytes, !batches[batches.count - 1].isEmpty {
                    batches.append([])
                    size = 0
                }
                batches[batches.count - 1].append(item)
                size += itemSize + 1
            }
            var imported = 0
            for batch in batches {
                do throws(ClientFailure) {
                    let answer = try connection.perform(["op": "import", "secrets": batch])
                    imported += answer["imported"]?.integer.map(Int.init) ?? 0
                } catch {
                    throw ClientFailure(error.kind, "\(error.message) (\(imported) of \(items.count) secrets were imported before this batch)")
                }
            }
            if !connection.json { print("imported \(imported) secrets") }
        }
    }

    /// `NAME=VALUE` per line; blank lines and `#` comments skipped; `export `
    /// allowed before NAME; a value in matching single or double quotes is
    /// taken without them.
    static func parseEnv(_ data: Data) throws(ClientFailure) -> [(String, String)] {
        guard let text = String(data: data, encoding: .utf8) else { throw ClientFailure(.usage, "the env file is not UTF-8") }
        var pairs: [(String, String)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.hasSuffix("\r") ? raw.dropLast() : raw[...]
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.trimmingCharacters(in: .whitespaces).hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst("export ".count) }
            guard let equals = line.firstIndex(of: "=") else {
                // The line may be a value: say where, never what.
                throw ClientFailure(.usage, "line \(number + 1): expected NAME=VALUE")
            }
            let name = String(line[..<equals]).trimmingCharacters(in: .whitespaces)
            var value = String(line[line.index(after: equals)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            pairs.append((name, value))
        }
        return pairs
    }

    /// `{"name": "text value", "other": {"value_base64": "…"}}`: what
    /// `export --plaintext` writes.
    static func parseJSON(_ data: Data) throws(ClientFailure) -> [[String: String]] {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ClientFailure(.usage, "the JSON file must be one object of name to value")
        }
        var items: [[String: String]] = []
        for name in object.keys.sorted() {
            if let value = object[name] as? String {
                items.append(["name": name, "value": value])
            } else if let binary = (object[name] as? [String: Any])?["value_base64"] as? String {
                items.append(["name": name, "value_base64": binary])
            } else {
                throw ClientFailure(.usage, "the value of \(name) is neither a string nor {\"value_base64\": …}")
            }
        }
        return items
    }
}

/// `cofferctl export`: the store as an encrypted store file (the default),
/// or every revealable value with --plaintext. Output goes to standard
/// output or to a new file created 0600 (never over an existing one).
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the store as an encrypted store file, or with --plaintext every value as JSON (to stdout or a new 0600 file).")

    @ParentCommand var root: CofferCtl
    var connection: ConnectionOptions { root.connection }
    @Option(help: "A new file to write (created 0600; an existing file is not overwritten).") var out: String?
    @Flag(help: "Export the values themselves, as a JSON object of name to value. Handle the output as you would the master key.")
    var plaintext = false

    func run() throws {
        try cofferctl.run { () throws(ClientFailure) in
            var request: [String: Any] = ["op": "export"]
            if plaintext {
                request["plaintext"] = true
                FileHandle.standardError.write(Data("cofferctl: WARNING: exporting every value in plaintext; protect the output as you would the master key.\n".utf8))
            }
            // The answer is written below in its own form; --json must not
            // echo it (with --plaintext it holds every value).
            var quiet = connection
            quiet.json = false
            let answer = try quiet.perform(request)
            var bytes: Data
            if plaintext {
                // Text as a string, bytes as {"value_base64": …}: import reads both.
                var object: [String: Any] = [:]
                for item in answer["secrets"]?.array ?? [] {
                    guard let name = item["name"]?.string else { continue }
                    if let value = item["value"]?.string { object[name] = value }
                    if let value = item["value_base64"]?.string { object[name] = ["value_base64": value] }
                }
                var encoded = (try? RequestJSON.encode(object, layout: .pretty, line: true)) ?? []
                bytes = Data(encoded)
                encoded.wipe()
                object.removeAll()
            } else {
                bytes = Data((answer["store_file"]?.string ?? "").utf8)
            }
            defer { bytes.resetBytes(in: 0..<bytes.count) }
            if let out {
                try Self.writeNewPrivateFile(out, bytes)
                FileHandle.standardError.write(Data("cofferctl: wrote \(out) (0600)\n".utf8))
            } else {
                FileHandle.standardOutput.write(bytes)
            }
        }
    }

    static func writeNewPrivateFile(_ path: String, _ data: Data) throws(ClientFailure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ClientFailure(.failed, "cannot create \(path): \(String(cString: strerror(errno))) (it must not exist yet)") }
        defer { close(fd) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(fd) == 0 else {
            // Never leave half an export (possibly plaintext) behind.
            unlink(path)
            throw ClientFailure(.failed, "could not write \(path)")
        }
    }
}

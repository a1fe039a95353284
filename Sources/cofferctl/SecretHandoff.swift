import Foundation
import JSON
import LockedMemory
import Model
import Syscalls

/// `--env VAR=NAME` or `--file VAR=NAME`: where one secret goes.
struct SecretMapping: Equatable {
    let variable: String
    let name: String
    let asFile: Bool

    init(_ text: String, asFile: Bool) throws(ClientFailure) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty, Self.isVariableName(parts[0]) else {
            throw ClientFailure(.usage, "'\(asFile ? "--file" : "--env") \(text)': give VAR=NAME (VAR: letters, digits, _)")
        }
        variable = parts[0]
        name = parts[1]
        self.asFile = asFile
    }

    static func isVariableName(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= 97 && first | 0x20 <= 122) else { return false }
        return text.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || ($0 >= 48 && $0 <= 57) }
    }
}

/// The values a program is given, read from coffer.sock as the caller.
/// Each value is held as bytes and wiped when replaced or released; never
/// a String, never on a command line.
final class SecretValues {
    /// By secret name: the value, the version it came from, and whether
    /// cofferd sent it as text (`value`) rather than bytes (`value_base64`).
    private(set) var values: [String: (bytes: [UInt8], version: Int64, isText: Bool)] = [:]

    /// Reads every name of `mappings` on one connection.
    static func fetch(_ mappings: [SecretMapping], socket: String) throws(ClientFailure) -> SecretValues {
        let fetched = SecretValues()
        var connection = try AdminConnection(path: socket)
        for name in Set(mappings.map(\.name)).sorted() {
            var line = try connection.exchange(["id": 1, "op": "get", "name": name])
            defer { line.wipe() }
            fetched.values[name] = try Self.value(of: name, in: line)
        }
        for mapping in mappings where !mapping.asFile {
            let value = fetched.values[mapping.name]!
            guard value.isText, !value.bytes.contains(0) else {
                throw ClientFailure(.usage, "\(mapping.name) is not text: give it with --file \(mapping.variable)=\(mapping.name)")
            }
        }
        return fetched
    }

    /// The value in a get's answer line, decoded into bytes.
    private static func value(of name: String, in line: [UInt8]) throws(ClientFailure) -> (bytes: [UInt8], version: Int64, isText: Bool) {
        do {
            return try line.withUnsafeBytes { raw in try value(of: name, in: raw) }
        } catch let failure as ClientFailure {
            throw failure
        } catch {
            throw ClientFailure(.failed, "cannot read cofferd's answer")
        }
    }

    private static func value(of name: String, in raw: UnsafeRawBufferPointer) throws(ClientFailure) -> (bytes: [UInt8], version: Int64, isText: Bool) {
        guard let parsed = try? JSONParser.parse(raw), case .object(let answer) = parsed else {
            throw ClientFailure(.failed, "cofferd sent an answer that is not a JSON object")
        }
        guard answer["ok"] == .bool(true) else {
            func text(_ key: String) -> String? {
                guard case .object(let error)? = answer["error"], case .string(let s)? = error[key] else { return nil }
                return JSONStringDecoding.string(s, in: raw)
            }
            throw ClientFailure.fromWire(code: text("code") ?? "INTERNAL", message: "\(name): \(text("message") ?? "no message")")
        }
        var version: Int64 = 0
        if case .number(let digits)? = answer["version"] { version = Int64(digits) ?? 0 }
        if case .string(let s)? = answer["value"] {
            var bytes = [UInt8](repeating: 0, count: JSONStringDecoding.decodedCount(s, in: raw))
            bytes.withUnsafeMutableBytes { JSONStringDecoding.decode(s, in: raw, into: $0) }
            return (bytes, version, true)
        }
        if case .string(let s)? = answer["value_base64"],
           let bytes = Base64.decode(UnsafeRawBufferPointer(rebasing: raw[s.range])) {
            return (bytes, version, false)
        }
        throw ClientFailure(.failed, "cofferd's answer for \(name) has no value")
    }

    /// The versions, to tell a change from a reconnection.
    var versions: [String: Int64] { values.mapValues(\.version) }

    func wipe() {
        for key in values.keys { values[key]!.bytes.wipe() }
        values = [:]
    }

    deinit { wipe() }
}

/// The private directory `--file` values go in: 0700, each file 0400,
/// on a memory file system when there is one ($XDG_RUNTIME_DIR, else
/// /dev/shm), removed with everything in it when the program ends.
final class SecretFiles {
    let directory: String

    init() throws(ClientFailure) {
        let environment = ProcessInfo.processInfo.environment
        let base = [environment["XDG_RUNTIME_DIR"], "/dev/shm", "/tmp"].compactMap { $0 }.first { path in
            var info = stat()
            return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && access(path, W_OK) == 0
        } ?? "/tmp"
        var template = Array("\(base)/coffer-exec.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ClientFailure(.failed, "cannot make a private directory under \(base)")
        }
        directory = String(cString: made)
    }

    func path(for mapping: SecretMapping) -> String { directory + "/" + mapping.variable }

    /// Writes (or replaces, by rename) each file mapping's value.
    func write(_ mappings: [SecretMapping], from values: SecretValues) throws(ClientFailure) {
        for mapping in mappings where mapping.asFile {
            let temporary = directory + "/." + mapping.variable + ".new"
            do {
                let fd = try OwnedFileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o400)
                try fd.writeAll(values.values[mapping.name]!.bytes)
                try fd.close()
                _ = try syscall("rename") { rename(temporary, path(for: mapping)) }
            } catch {
                unlink(temporary)
                throw ClientFailure(.failed, "cannot write \(path(for: mapping)): \(error)")
            }
        }
    }

    /// Removes the files and the directory.
    func remove() {
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) {
            for entry in entries { unlink(directory + "/" + entry) }
        }
        rmdir(directory)
    }
}

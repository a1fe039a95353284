/// The policy file (docs/policy.md; example in etc/coffer/policy): one
/// statement per line, `#` starts a comment.
///
///     allow get,verify on app/db/* to unit:web.service group:dbusers
///     operator group:coffer-admins
///     credential web.service db-password app/db/password
///
/// Parsing is all or nothing: the first bad line is an error that names it,
/// and the caller keeps the policy it had.
public struct PolicyFile: Sendable, Equatable {
    public var operators: [Principal] = []
    public var rules: [AccessPolicy.Rule] = []
    public var credentials: [AccessPolicy.CredentialMapping] = []

    public init() {}

    /// Operation words a rule may use besides the operation names.
    static let readOperations: Set<Operation> = [.get, .verify, .list, .describe, .watch]

    public static func parse(_ text: String, directory: some AccountDirectory) throws(PolicyFileError) -> PolicyFile {
        var file = PolicyFile()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let content = raw.prefix { $0 != "#" }
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let keyword = words.first else { continue }
            do throws(CofferError) {
                switch keyword {
                case "allow": file.rules.append(try rule(Array(words.dropFirst()), directory: directory))
                case "operator":
                    guard words.count > 1 else { throw CofferError(.badRequest, "'operator' needs at least one principal") }
                    file.operators += try words.dropFirst().map { (w: String) throws(CofferError) in
                        try Principal.parse(w, directory: directory)
                    }
                case "credential": file.credentials.append(try credential(Array(words.dropFirst())))
                default:
                    throw CofferError(.badRequest, "unknown statement '\(keyword.prefix(32))' (allow, operator or credential)")
                }
            } catch {
                throw PolicyFileError(line: line, message: error.message)
            }
        }
        return file
    }

    /// `allow OPS on GLOBS to PRINCIPAL...`
    private static func rule(_ words: [String], directory: some AccountDirectory) throws(CofferError) -> AccessPolicy.Rule {
        guard words.count >= 5, words[1] == "on", words[3] == "to" else {
            throw CofferError(.badRequest, "expected 'allow OPERATIONS on NAMES to PRINCIPALS'")
        }
        var operations: Set<Operation> = []
        for word in words[0].split(separator: ",") {
            switch word {
            case "all": operations.formUnion(Operation.allCases)
            case "read": operations.formUnion(readOperations)
            default:
                guard let op = Operation(rawValue: String(word)), op != .ping else {
                    throw CofferError(.badRequest, "unknown operation '\(word.prefix(32))'")
                }
                operations.insert(op)
            }
        }
        guard !operations.isEmpty else { throw CofferError(.badRequest, "no operations") }
        var names: [NamePattern] = []
        for word in words[2].split(separator: ",") {
            names.append(try NamePattern.validated(String(word)))
        }
        guard !names.isEmpty else { throw CofferError(.badRequest, "no names") }
        var principals: [Principal] = []
        for word in words[4...] {
            principals.append(try Principal.parse(word, directory: directory))
        }
        return AccessPolicy.Rule(operations: operations, names: names, principals: principals)
    }

    /// `credential UNIT-GLOB ID NAME`
    private static func credential(_ words: [String]) throws(CofferError) -> AccessPolicy.CredentialMapping {
        guard words.count == 3 else { throw CofferError(.badRequest, "expected 'credential UNIT ID SECRET-NAME'") }
        let unit = words[0].hasPrefix("unit:") ? String(words[0].dropFirst(5)) : words[0]
        guard case .unit(let pattern) = try Principal.parse("unit:" + unit, directory: NumericAccounts()) else {
            throw CofferError(.badRequest, "'\(unit)' is not a unit")
        }
        guard CredentialID.isValid(words[1]) else {
            throw CofferError(.badRequest, "'\(words[1].prefix(64))' is not a credential id (a file name: no '/', at most 255 bytes)")
        }
        return AccessPolicy.CredentialMapping(unit: pattern, id: words[1], name: try SecretName(words[2]))
    }
}

/// A broken policy file: which line, and what is wrong with it.
public struct PolicyFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let message: String

    public var description: String { "line \(line): \(message)" }
}

/// systemd credential ids are file names (systemd.exec(5), "Credentials").
public enum CredentialID {
    public static func isValid(_ text: some StringProtocol) -> Bool {
        (1...255).contains(text.utf8.count) && text != "." && text != ".."
            && !text.utf8.contains(UInt8(ascii: "/")) && !text.utf8.contains(0)
    }
}

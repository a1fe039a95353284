import Foundation

/// A page of docs/, read by a test so that the known-answer vectors it
/// prints are the ones the code is checked against: a vector that goes
/// stale fails the suite instead of misleading a reader.
public struct DocumentPage {
    public let text: String

    /// `relativePath` from the repository root, e.g. `docs/crypto.md`.
    public init(_ relativePath: String) throws {
        // This file is Tests/CofferTestSupport/DocumentedVectors.swift.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        text = try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
    }

    init(text: String) { self.text = text }

    /// The part of the page under the heading whose title is `title`, up to
    /// the next heading of the same or a higher level.
    public func section(_ title: String) throws -> DocumentPage {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { Self.heading($0)?.title == title }),
              let level = Self.heading(lines[start])?.level else {
            throw DocumentError("no heading '\(title)'")
        }
        let rest = lines[(start + 1)...]
        let end = rest.firstIndex { line in Self.heading(line).map { $0.level <= level } ?? false } ?? lines.endIndex
        return DocumentPage(text: lines[(start + 1)..<end].joined(separator: "\n"))
    }

    /// Every fenced block's lines, in page order.
    public var codeBlocks: [[Substring]] {
        var blocks: [[Substring]] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let done = current { blocks.append(done); current = nil } else { current = [] }
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// The fenced block whose opening line names `tag` (```json tag).
    public func block(tagged tag: String) throws -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let open = lines.firstIndex(where: { $0.hasPrefix("```") && $0.split(separator: " ").contains(Substring(tag)) }),
              let close = lines[(open + 1)...].firstIndex(where: { $0.hasPrefix("```") }) else {
            throw DocumentError("no block tagged '\(tag)'")
        }
        return lines[(open + 1)..<close].joined(separator: "\n")
    }

    /// `name = value` lines of the code blocks (spaces around `=` ignored);
    /// a name given twice is an error, so two vectors cannot shadow each other.
    public func assignments() throws -> [String: String] {
        var found: [String: String] = [:]
        for line in codeBlocks.joined() {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard found.updateValue(value, forKey: name) == nil else { throw DocumentError("'\(name)' is given twice") }
        }
        return found
    }

    /// The value of `name` in `assignments()`.
    public func value(_ name: String) throws -> String {
        guard let value = try assignments()[name] else { throw DocumentError("no '\(name) = …' line") }
        return value
    }

    /// The cells of each table row (header and rule excluded), backticks
    /// and surrounding spaces removed.
    public var tableRows: [[String]] {
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("|") }
        return rows.dropFirst().compactMap { row in
            let cells = row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            if cells.allSatisfy({ $0.allSatisfy { $0 == "-" || $0 == ":" } }) { return nil }
            return cells.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "`")) }
        }
    }

    private static func heading(_ line: Substring) -> (level: Int, title: String)? {
        let hashes = line.prefix { $0 == "#" }.count
        guard hashes > 0, line.dropFirst(hashes).first == " " else { return nil }
        return (hashes, line.dropFirst(hashes + 1).trimmingCharacters(in: .whitespaces))
    }
}

public struct DocumentError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

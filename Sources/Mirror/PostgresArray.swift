import Model

/// PostgreSQL array literals (text form) for unnest($n::type[]) batches:
/// one statement carries a thousand rows, still as a parameter, never as
/// SQL text. Every element is quoted, with `\` and `"` escaped
/// (PostgreSQL docs, "Array Value Input"). Built as bytes: this is the
/// mirror's hot path on a first sync (scripts/bench).
enum PostgresArray {
    static func text(_ values: [String?]) -> PostgresValue {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(values.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 4 })
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            guard let value else { out.append(contentsOf: "NULL".utf8); continue }
            out.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { out.append(UInt8(ascii: "\\")) }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return .encodedText(out)
    }

    static func integers(_ values: [Int64?]) -> PostgresValue {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(values.count * 8 + 2)
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: (value.map { String($0) } ?? "NULL").utf8)
        }
        out.append(UInt8(ascii: "}"))
        return .encodedText(out)
    }

    /// bytea elements in hex form (`\x…`), quoted, the backslash escaped.
    static func bytes(_ values: [[UInt8]]) -> PostgresValue {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(values.reduce(2) { $0 + $1.count * 2 + 6 })
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: "\"\\\\x".utf8)
            Hex.append(value, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return .encodedText(out)
    }
}

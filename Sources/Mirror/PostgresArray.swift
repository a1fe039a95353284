import Model

/// PostgreSQL array literals (text form) for unnest($n::type[]) batches:
/// one statement carries a thousand rows, still as a parameter, never as
/// SQL text. Every element is quoted, with `\` and `"` escaped
/// (PostgreSQL docs, "Array Value Input").
enum PostgresArray {
    static func text(_ values: [String?]) -> PostgresValue {
        var out = "{"
        for (i, value) in values.enumerated() {
            if i > 0 { out += "," }
            guard let value else { out += "NULL"; continue }
            out += "\""
            for c in value.unicodeScalars {
                if c == "\\" || c == "\"" { out += "\\" }
                out.unicodeScalars.append(c)
            }
            out += "\""
        }
        return .text(out + "}")
    }

    static func integers(_ values: [Int64?]) -> PostgresValue {
        .text("{" + values.map { $0.map { String($0) } ?? "NULL" }.joined(separator: ",") + "}")
    }

    /// bytea elements in hex form (`\x…`), quoted, the backslash escaped.
    static func bytes(_ values: [[UInt8]]) -> PostgresValue {
        var out = "{"
        out.reserveCapacity(values.reduce(2) { $0 + $1.count * 2 + 6 })
        for (i, value) in values.enumerated() {
            if i > 0 { out += "," }
            out += "\"\\\\x" + Hex.encode(value) + "\""
        }
        return .text(out + "}")
    }
}

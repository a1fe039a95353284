import Foundation
import JSON

/// A request (or an export) as JSON text, keys sorted, through the JSON
/// module's writer: the one escaping rule cofferd itself writes by.
enum RequestJSON {
    struct Unencodable: Error {}

    /// `value` as JSON, newline-terminated when `line` (a request). The
    /// buffer may hold a value: it grows only by moving to a bigger one and
    /// zeroing the old, so no copy is left behind in freed memory. The
    /// caller wipes what it gets.
    static func encode(_ value: Any, layout: JSONWriter.Layout = .compact, line: Bool = false) throws(Unencodable) -> [UInt8] {
        var w = JSONWriter(capacity: 1024, layout: layout, wiping: zeroedOnGrowth)
        try write(value, into: &w)
        if line { w.raw("\n") }
        return w.bytes
    }

    static let zeroedOnGrowth = JSONWriter.Wiping(
        reserve: { bytes, extra in
            guard bytes.count + extra > bytes.capacity else { return }
            var grown: [UInt8] = []
            grown.reserveCapacity(max(bytes.count + extra, bytes.capacity * 2))
            grown.append(contentsOf: bytes)
            erase(&bytes)
            bytes = grown
        },
        erase: erase)

    private static func erase(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { explicit_bzero(base, $0.count) } }
        bytes.removeAll()
    }

    private static func write(_ value: Any, into w: inout JSONWriter) throws(Unencodable) {
        switch value {
        case let text as String: w.string(text)
        case let flag as Bool: w.bool(flag)
        case let number as any BinaryInteger: w.integer(number)
        case is NSNull: w.raw("null")
        case let items as [Any]:
            w.open("[")
            for item in items {
                w.element()
                try write(item, into: &w)
            }
            w.close("]")
        case let members as [String: Any]:
            w.open("{")
            for key in members.keys.sorted() {
                w.key(key)
                try write(members[key]!, into: &w)
            }
            w.close("}")
        default:
            throw Unencodable()
        }
    }
}

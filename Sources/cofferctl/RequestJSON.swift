import Foundation
import JSON
import LockedMemory

/// A request (or an export) as JSON text, keys sorted, through the JSON
/// module's writer: the one escaping rule cofferd itself writes by.
enum RequestJSON {
    struct Unencodable: Error {}

    /// `value` as JSON, newline-terminated when `line` (a request). The
    /// buffer may hold a value: it grows only through LockedMemory's
    /// `reserveWiping`, so no copy is left behind in freed memory. The
    /// caller wipes what it gets (`Array.wipe`).
    static func encode(_ value: Any, layout: JSONWriter.Layout = .compact, line: Bool = false) throws(Unencodable) -> [UInt8] {
        var w = JSONWriter(capacity: 1024, layout: layout, wiping: JSONWriter.Wiping(reserve: { $0.reserveWiping($1) }, erase: { $0.wipe() }))
        try write(value, into: &w)
        if line { w.raw("\n") }
        return w.bytes
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

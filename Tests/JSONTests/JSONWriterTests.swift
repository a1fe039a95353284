import JSON
import Synchronization
import Testing

/// The one JSON writer: both layouts, the separators, and growth through
/// the wiping hook when the output may hold a value.
@Suite struct JSONWriterTests {
    func document(_ layout: JSONWriter.Layout) -> String {
        var w = JSONWriter(capacity: 8, layout: layout)
        w.open("{")
        w.key("a"); w.integer(-1)
        w.key("b"); w.open("[")
        w.element(); w.string("x\"\u{7F}")
        w.element(); w.bool(true)
        w.close("]")
        w.key("c"); w.open("{"); w.close("}")
        w.key("d"); w.quoted(count: 2) { emit in emit(0x68); emit(0x69) }
        w.close("}")
        return String(decoding: w.bytes, as: UTF8.self)
    }

    @Test func compactAndPrettyHoldTheSameDocument() {
        #expect(document(.compact) == #"{"a":-1,"b":["x\"\u007f",true],"c":{},"d":"hi"}"#)
        #expect(document(.pretty) == """
            {
              "a" : -1,
              "b" : [
                "x\\"\\u007f",
                true
              ],
              "c" : {},
              "d" : "hi"
            }
            """)
    }

    @Test func anOutputThatMayHoldAValueGrowsOnlyThroughItsWipingHook() {
        let grown = Mutex(0), erased = Mutex(0)
        let wiping = JSONWriter.Wiping(
            reserve: { bytes, extra in
                guard bytes.count + extra > bytes.capacity else { return }
                grown.withLock { $0 += 1 }
                var bigger: [UInt8] = []
                bigger.reserveCapacity(max(bytes.count + extra, bytes.capacity * 2))
                bigger.append(contentsOf: bytes)
                bytes = bigger
            },
            erase: { bytes in erased.withLock { $0 += 1 }; bytes.removeAll() })
        var w = JSONWriter(capacity: 4, wiping: wiping)
        let capacity = w.bytes.capacity
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: 200)
        value.withUnsafeBytes { w.escaped($0) }
        #expect(w.bytes.count == 202)
        #expect(grown.withLock { $0 } >= 1, "the buffer of capacity \(capacity) grew through the hook")
        #expect(w.bytes.capacity >= 202 * 1)
        w.wipe()
        #expect(w.bytes.isEmpty && erased.withLock { $0 } == 1)
    }
}

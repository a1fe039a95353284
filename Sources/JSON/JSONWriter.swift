/// Writes JSON text as bytes: the one writer for every JSON document
/// cofferd makes (the answers on the wire, watch lines, the store file, the
/// mirror's metadata). Strings are escaped by JSONEscaping, byte by byte,
/// so a value goes from its buffer into the output without passing through
/// a temporary.
///
/// Members and elements are written either by hand (`raw` for the
/// punctuation: the answers, whose layout is fixed) or with `open`,
/// `key`, `element` and `close`, which place the commas and, in the
/// `pretty` layout, the newlines and indentation.
public struct JSONWriter: Sendable {
    public enum Layout: Sendable {
        case compact
        /// The layout of JSONEncoder's `[.prettyPrinted, .sortedKeys,
        /// .withoutEscapingSlashes]`: two-space indent, `"key" : value`.
        case pretty
    }

    /// How the buffer grows when the output may hold a value.
    public struct Wiping: Sendable {
        /// Makes room for that many more bytes; the storage it leaves
        /// behind must be zeroed first.
        let reserve: @Sendable (inout [UInt8], Int) -> Void
        /// Zeroes the bytes and empties the buffer.
        let erase: @Sendable (inout [UInt8]) -> Void

        public init(reserve: @escaping @Sendable (inout [UInt8], Int) -> Void, erase: @escaping @Sendable (inout [UInt8]) -> Void) {
            self.reserve = reserve
            self.erase = erase
        }
    }

    public private(set) var bytes: [UInt8] = []
    private let layout: Layout
    /// nil: plain appends (ciphertext, names, metadata only). Set: every
    /// append makes room through it first, so the array never outgrows its
    /// storage by a plain append, which would free the old block (holding
    /// whatever value was written so far) without zeroing it.
    private let wiping: Wiping?
    /// For each open container, whether nothing is in it yet.
    private var firstInContainer: [Bool] = []

    public init(capacity: Int = 256, layout: Layout = .compact, wiping: Wiping? = nil) {
        self.layout = layout
        self.wiping = wiping
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    private mutating func makeRoom(_ count: Int) {
        if let wiping { wiping.reserve(&bytes, count) }
    }

    // MARK: Text as it is

    public mutating func raw(_ text: StaticString) {
        makeRoom(text.utf8CodeUnitCount)
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    public mutating func raw(_ data: [UInt8]) {
        makeRoom(data.count)
        bytes.append(contentsOf: data)
    }

    // MARK: Values

    public mutating func string(_ text: String) {
        var copy = text
        copy.withUTF8 { escaped(UnsafeRawBufferPointer($0)) }
    }

    /// A quoted, escaped string from UTF-8 bytes.
    public mutating func escaped(_ utf8: UnsafeRawBufferPointer) {
        // The longest it can become: every byte as \u00XX, and the quotes.
        makeRoom(utf8.count * JSONEscaping.maxExpansion + 2)
        JSONEscaping.quote(utf8) { bytes.append($0) }
    }

    /// A quoted string of `count` bytes that need no escaping (base64, hex),
    /// handed by `produce` to its `emit` one by one.
    public mutating func quoted(count: Int, _ produce: (_ emit: (UInt8) -> Void) -> Void) {
        makeRoom(count + 2)
        bytes.append(UInt8(ascii: "\""))
        produce { bytes.append($0) }
        bytes.append(UInt8(ascii: "\""))
    }

    // Concrete overloads for the integer types the writers use: a generic
    // is not specialized across modules, and the store file writes
    // hundreds of thousands of numbers.
    public mutating func integer(_ value: Int64) { decimal(value) }
    public mutating func integer(_ value: UInt64) { decimal(value) }
    public mutating func integer(_ value: Int) { decimal(value) }
    public mutating func integer(_ value: UInt32) { decimal(value) }

    /// Any other integer type (cofferctl's requests).
    public mutating func integer(_ value: some BinaryInteger) { decimal(value) }

    private mutating func decimal(_ value: some BinaryInteger) {
        let digits = String(value).utf8
        makeRoom(digits.count)
        bytes.append(contentsOf: digits)
    }

    public mutating func bool(_ value: Bool) {
        value ? raw("true") : raw("false")
    }

    // MARK: Containers with their separators

    /// Opens an object (`{`) or an array (`[`).
    public mutating func open(_ bracket: Unicode.Scalar) {
        makeRoom(1)
        bytes.append(UInt8(ascii: bracket))
        firstInContainer.append(true)
    }

    public mutating func close(_ bracket: Unicode.Scalar) {
        let empty = firstInContainer.removeLast()
        if !empty { newline() }
        makeRoom(1)
        bytes.append(UInt8(ascii: bracket))
    }

    /// A member's key, after the separator; its value follows.
    public mutating func key(_ name: String) {
        next()
        string(name)
        layout == .pretty ? raw(" : ") : raw(":")
    }

    /// Before an array element.
    public mutating func element() { next() }

    /// The separator and newline before the next member or element.
    private mutating func next() {
        if firstInContainer[firstInContainer.count - 1] {
            firstInContainer[firstInContainer.count - 1] = false
        } else {
            raw(",")
        }
        newline()
    }

    private mutating func newline() {
        guard layout == .pretty else { return }
        makeRoom(1 + 2 * firstInContainer.count)
        bytes.append(UInt8(ascii: "\n"))
        for _ in 0..<firstInContainer.count { bytes.append(32); bytes.append(32) }
    }

    // MARK: Afterwards

    /// Zeroes and releases the buffer (after an answer that carried a
    /// value). Without `wiping`, only empties it.
    public mutating func wipe() {
        if let wiping { wiping.erase(&bytes) } else { bytes.removeAll() }
    }
}

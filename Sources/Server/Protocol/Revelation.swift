import Audit
import LockedMemory
import Model

/// What an answer reveals: a secret's value, a generated token, a verify
/// verdict, or the exported store. Whatever operation made it, its content
/// can be read for the wire only with the receipt of the audit event that
/// recorded the reveal, so "audit before reveal" holds by construction, not
/// by a list of operations someone must remember to extend
/// (docs/security.md, "Every reveal is on record").
struct Revelation: Sendable {
    enum Content: Sendable {
        /// A value opened into locked memory (wiped when released).
        case value(LockedBytes, ValueEncoding)
        /// Whether a verify candidate matched: an oracle for guessing.
        case verdict(Bool)
        /// The exported store file: ciphertext, but every record at once.
        case storeFile(String)
    }

    private let content: Content

    init(_ content: Content) {
        self.content = content
    }

    /// The content, for the one place that writes it out.
    func content(_ receipt: AuditReceipt) -> Content {
        content
    }
}

extension ResponseValue {
    /// A value from locked memory, written as text or base64.
    static func secret(_ bytes: LockedBytes, _ encoding: ValueEncoding) -> ResponseValue {
        .revealed(Revelation(.value(bytes, encoding)))
    }

    static func verdict(_ matched: Bool) -> ResponseValue {
        .revealed(Revelation(.verdict(matched)))
    }
}

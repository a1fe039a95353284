/// A validated secret name: `segment(/segment)*`, each segment one or more of
/// `[A-Za-z0-9._-]`, at most 255 bytes in all. `.` and `..` are refused as
/// segments so a name can never read as a path step (docs/protocol.md).
public struct SecretName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maxBytes = 255
    public let rawValue: String

    public init(_ text: String) throws(CofferError) {
        if let problem = SecretName.problem(text) {
            throw CofferError(.badRequest, "invalid secret name: \(problem)")
        }
        rawValue = text
    }

    /// Why `text` is not a name, or nil. The reason never echoes the text:
    /// a caller may have put a value where a name belongs.
    public static func problem(_ text: String) -> String? {
        // Over the bytes in place, with no copy and no array of segments: a
        // store file's load checks every name in it.
        var text = text
        return text.withUTF8 { bytes -> String? in
            if bytes.isEmpty { return "empty" }
            if bytes.count > maxBytes { return "longer than \(maxBytes) bytes" }
            var segmentStart = 0
            for i in 0...bytes.count {
                guard i == bytes.count || bytes[i] == UInt8(ascii: "/") else { continue }
                let segment = UnsafeBufferPointer(rebasing: bytes[segmentStart..<i])
                segmentStart = i + 1
                if segment.isEmpty { return "empty segment (leading, trailing or doubled '/')" }
                if segment.count <= 2, segment.allSatisfy({ $0 == UInt8(ascii: ".") }) { return "'.' and '..' are not allowed as segments" }
                for c in segment where !isNameByte(c) {
                    return c == 0 ? "contains NUL" : "segments may hold only A-Z a-z 0-9 . _ -"
                }
            }
            return nil
        }
    }

    private static func isNameByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    public static func < (lhs: SecretName, rhs: SecretName) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

#if canImport(Glibc)
import Glibc
#endif

/// Development fallback when no journal runs: one line per event on stderr,
/// `audit: KEY=value …` with the same fields the journal gets.
public struct StderrAuditSink: AuditSink {
    public var name: String { "stderr" }
    let chainer: AuditChainer?

    public init(chainer: AuditChainer? = nil) {
        self.chainer = chainer
    }

    public var sequences: [UInt64]? { chainer?.sequences }

    public func record(_ event: AuditEvent) throws(AuditError) {
        guard let chainer else { return try emit(event.fields) }
        try chainer.stamp(event.fields) { (fields) throws(AuditError) in try emit(fields) }
    }

    private func emit(_ fields: [(String, String)]) throws(AuditError) {
        var line = "audit:"
        for (key, value) in fields where key != "MESSAGE" && key != "SYSLOG_IDENTIFIER" {
            line += " \(key)=\(Self.quoted(value))"
        }
        line += "\n"
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if written != bytes.count { throw AuditError("could not write an audit event to stderr") }
    }

    static func quoted(_ value: String) -> String {
        let plain = value.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "\"") }
        if plain { return value }
        var out = "\""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}

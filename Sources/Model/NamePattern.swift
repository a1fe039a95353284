/// A glob over secret names (or unit names): `*` matches within one
/// segment, `**` across segments; every other character matches itself.
///
/// Matching simulates the pattern as an automaton over the name, one pass
/// over the name with the set of live pattern positions: at most
/// name × pattern steps whatever the pattern, so a hostile glob (say
/// `**a**a**a…`) costs no more than an honest one. Backtracking matchers
/// are exponential on exactly those.
public struct NamePattern: Sendable, Equatable, Hashable, CustomStringConvertible {
    public static let any = NamePattern("**")
    public static let maxWildcards = 4

    public let pattern: String
    private let tokens: [Token]

    private enum Token: Hashable {
        case byte(UInt8)
        /// `*`: any run of bytes without `/`.
        case star
        /// `**`: any run of bytes.
        case doubleStar
    }

    public init(_ pattern: String) {
        self.pattern = pattern
        var tokens: [Token] = []
        var bytes = pattern.utf8[...]
        while let c = bytes.first {
            if c == UInt8(ascii: "*") {
                let run = bytes.prefix { $0 == UInt8(ascii: "*") }.count
                tokens.append(run >= 2 ? .doubleStar : .star)
                bytes = bytes.dropFirst(run)
            } else {
                tokens.append(.byte(c))
                bytes = bytes.dropFirst()
            }
        }
        self.tokens = tokens
    }

    public static func == (lhs: NamePattern, rhs: NamePattern) -> Bool { lhs.pattern == rhs.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }

    public func matches(_ name: SecretName) -> Bool {
        matches(text: name.rawValue)
    }

    public func matches(text: String) -> Bool {
        let count = tokens.count
        var live = [Bool](repeating: false, count: count + 1)
        var next = live
        live[0] = true
        close(&live)
        for c in text.utf8 {
            for i in 0...count { next[i] = false }
            var any = false
            for i in 0..<count where live[i] {
                switch tokens[i] {
                case .byte(let b) where b == c: next[i + 1] = true; any = true
                case .star where c != UInt8(ascii: "/"): next[i] = true; any = true
                case .doubleStar: next[i] = true; any = true
                default: break
                }
            }
            guard any else { return false }
            close(&next)
            swap(&live, &next)
        }
        return live[count]
    }

    /// A wildcard may match nothing: whoever stands before one also stands
    /// after it.
    private func close(_ live: inout [Bool]) {
        for i in 0..<tokens.count where live[i] {
            if tokens[i] == .star || tokens[i] == .doubleStar { live[i + 1] = true }
        }
    }

    /// Whether the pattern has no wildcard (it names one secret).
    public var isLiteral: Bool { !tokens.contains { $0 == .star || $0 == .doubleStar } }

    /// How many wildcards (`*` or `**` runs) the pattern holds.
    var wildcardCount: Int { tokens.count { $0 == .star || $0 == .doubleStar } }

    /// Checks a pattern written by a client or an operator: the name grammar
    /// with `*` or `**` inside segments, at most `maxWildcards` of them.
    public static func validated(_ text: String) throws(CofferError) -> NamePattern {
        guard !text.contains("***") else { throw CofferError(.badRequest, "invalid name pattern: use * or **, not ***") }
        let stand = String(text.map { $0 == "*" ? "x" : $0 })
        if let problem = SecretName.problem(stand) {
            throw CofferError(.badRequest, "invalid name pattern: \(problem)")
        }
        let pattern = NamePattern(text)
        guard pattern.wildcardCount <= maxWildcards else {
            throw CofferError(.badRequest, "a name pattern may hold at most \(maxWildcards) wildcards")
        }
        return pattern
    }

    public var description: String { pattern }
}

import Model
import Testing

@Suite struct SecretNameTests {
    @Test(arguments: ["db", "db/password", "a.b_c-d/E9", "x/y/z", String(repeating: "a", count: 255), "..a", "a..b", ".hidden", "...", "a/..."])
    func acceptsTheGrammar(_ text: String) throws {
        #expect(try SecretName(text).rawValue == text)
    }

    @Test(arguments: ["", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a/..", "../a", "sp ace", "a\u{0}b", "é", "a:b",
                      String(repeating: "a", count: 256)])
    func refusesEverythingElse(_ text: String) {
        let error = #expect(throws: CofferError.self) { try SecretName(text) }
        #expect(error?.code == .badRequest)
    }

    /// The one-pass check accepts and refuses exactly what the check it
    /// replaced did (kept here as it was), with the same reason.
    @Test func agreesWithTheFormerCheck() {
        func former(_ text: String) -> String? {
            let bytes = Array(text.utf8)
            if bytes.isEmpty { return "empty" }
            if bytes.count > SecretName.maxBytes { return "longer than \(SecretName.maxBytes) bytes" }
            for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
                if segment.isEmpty { return "empty segment (leading, trailing or doubled '/')" }
                if segment.elementsEqual([46]) || segment.elementsEqual([46, 46]) { return "'.' and '..' are not allowed as segments" }
                for c in segment where !(c.isASCIILetterOrDigit || c == 46 || c == 95 || c == 45) {
                    return c == 0 ? "contains NUL" : "segments may hold only A-Z a-z 0-9 . _ -"
                }
            }
            return nil
        }
        let pieces = ["", "/", ".", "..", "...", "a", "Z9", "_-", "é", "\u{0}", " ", ":", "a.b"]
        var cases = [String(repeating: "a", count: 255), String(repeating: "a", count: 256),
                     String(repeating: "a/", count: 127) + "a", String(repeating: "ab/", count: 86)]
        for x in pieces { for y in pieces { for z in pieces { cases.append(x + y + z) } } }
        for text in cases {
            #expect(SecretName.problem(text) == former(text), "\(Array(text.utf8))")
        }
    }

    @Test func theReasonNeverEchoesTheText() {
        let error = #expect(throws: CofferError.self) { try SecretName("hunter2 is my password") }
        #expect(error?.message.contains("hunter2") == false)
    }
}

@Suite struct SecretKindTests {
    @Test func acceptsShortLowercaseLabels() throws {
        #expect(try SecretKind("api-key").rawValue == "api-key")
        #expect(throws: CofferError.self) { try SecretKind("API") }
        #expect(throws: CofferError.self) { try SecretKind("") }
        #expect(throws: CofferError.self) { try SecretKind(String(repeating: "a", count: 33)) }
    }
}

@Suite struct NamePatternTests {
    func matches(_ pattern: String, _ name: String) throws -> Bool {
        NamePattern(pattern).matches(try SecretName(name))
    }

    @Test func starStaysWithinASegment() throws {
        #expect(try matches("db/*", "db/password"))
        #expect(try !matches("db/*", "db/x/password"))
        #expect(try matches("db/*-key", "db/api-key"))
        #expect(try !matches("db/*", "dbx/password"))
    }

    @Test func doubleStarCrossesSegments() throws {
        #expect(try matches("**", "a/b/c"))
        #expect(try matches("db/**", "db/x/y"))
        #expect(try matches("exact", "exact"))
        #expect(try !matches("exact", "exactly"))
    }
}

@Suite struct AccessPolicyTests {
    let alice = PeerIdentity(uid: 1000, gid: 1000, pid: 1)
    let mallory = PeerIdentity(uid: 1001, gid: 1001, pid: 2)
    let name = try! SecretName("db/password")

    @Test func ownerMayDoEverything() {
        let policy = AccessPolicy.owner(uid: 1000)
        #expect(policy.decide(alice, .get, name: name, on: .service) == .allow)
        #expect(policy.decide(alice, .put, name: name, on: .admin) == .allow)
        #expect(policy.decide(alice, .status, name: nil, on: .admin) == .allow)
    }

    @Test func everyoneElseIsDeniedByDefault() {
        let policy = AccessPolicy.owner(uid: 1000)
        #expect(policy.decide(mallory, .get, name: name, on: .service) == .deny(.noGrant))
        #expect(policy.decide(mallory, .list, name: nil, on: .service) == .deny(.noGrant))
        #expect(!policy.mayList(mallory, name, on: .service))
    }

    @Test func pingIsAnswered() {
        #expect(AccessPolicy(superusers: []).decide(mallory, .ping, name: nil, on: .service) == .allow)
    }

    @Test func administrativeOperationsNeedTheAdminSocket() {
        let policy = AccessPolicy.owner(uid: 1000)
        #expect(policy.decide(alice, .put, name: name, on: .service) == .deny(.administrativeOperationOnServiceSocket))
        #expect(policy.decide(alice, .delete, name: name, on: .service) == .deny(.administrativeOperationOnServiceSocket))
    }

    @Test func grantsAreLimitedToTheirNamesAndOperations() throws {
        let policy = AccessPolicy(superusers: [], rules: [
            .init(operations: [.get, .list], names: [NamePattern("app/*")], principals: [.uid(1001)]),
        ])
        #expect(policy.decide(mallory, .get, name: try SecretName("app/token"), on: .service) == .allow)
        #expect(policy.decide(mallory, .get, name: name, on: .service) == .deny(.noGrant))
        #expect(policy.decide(mallory, .verify, name: try SecretName("app/token"), on: .service) == .deny(.noGrant))
        #expect(policy.mayList(mallory, try SecretName("app/token"), on: .service))
        #expect(!policy.mayList(mallory, name, on: .service))
    }
}

@Suite struct CofferErrorTests {
    @Test func descriptionIsTheRedactedMessageOnly() {
        let error = CofferError(.internal, "internal error", underlying: "detail for the log")
        #expect(error.description == "internal error")
        #expect(error.debugDescription.contains("detail for the log"))
    }
}

@Suite struct EncodingTests {
    @Test func hexRoundTrips() {
        let all = (0...255).map(UInt8.init)
        let text = Hex.encode(all)
        #expect(text.count == 512)
        #expect(text.hasPrefix("000102") && text.hasSuffix("fdfeff"))
        #expect(Hex.decode(text) == all)
        #expect(Hex.encode([]) == "")
        #expect(Hex.decode("0g") == nil)
        #expect(Hex.decode("ABCD") == nil)
    }

    /// A number goes into a MAC input as its decimal text would: files
    /// MACed before numbers were written without a String still check.
    @Test(arguments: [Int64.min, -10, -1, 0, 7, 10, 99, 1_000_000, Int64.max])
    func decimalsMatchTheirText(_ value: Int64) {
        var asNumber = LengthPrefixedFields()
        asNumber.add("n", decimal: value)
        var asText = LengthPrefixedFields()
        asText.add("n", String(value))
        #expect(asNumber.bytes == asText.bytes)
        var unsigned = LengthPrefixedFields()
        unsigned.add("n", decimal: UInt64.max)
        #expect(unsigned.bytes == { var t = LengthPrefixedFields(); t.add("n", String(UInt64.max)); return t.bytes }())
    }

    /// Flushed in pieces, the bytes are the same as kept whole.
    @Test func flushingHandsOverEverythingOnce() {
        var whole = LengthPrefixedFields()
        var pieced = LengthPrefixedFields()
        var received: [UInt8] = []
        for i in 0..<100 {
            whole.add("field\(i)", String(repeating: "x", count: i))
            pieced.add("field\(i)", String(repeating: "x", count: i))
            if i % 7 == 0 { pieced.flush { received.append(contentsOf: $0) } }
        }
        pieced.flush { received.append(contentsOf: $0) }
        #expect(received == whole.bytes)
        #expect(pieced.bytes.isEmpty)
    }
}

private extension UInt8 {
    var isASCIILetterOrDigit: Bool { (65...90).contains(self) || (97...122).contains(self) || (48...57).contains(self) }
}

/// The one hex codec: appending in place (key files, bytea literals) and
/// reading a digit of either case (a key file an operator made).
@Suite struct HexCodecTests {
    @Test func appendsTheSameDigitsAsEncodeAndReadsEitherCase() {
        let bytes: [UInt8] = [0x00, 0x0f, 0xa5, 0xff]
        var out = Array("x".utf8)
        Hex.append(bytes, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "x" + Hex.encode(bytes))
        #expect(Hex.encode(bytes) == "000fa5ff")
        #expect(Hex.value(ofDigit: UInt8(ascii: "F")) == 15 && Hex.value(ofDigit: UInt8(ascii: "f")) == 15)
        #expect(Hex.value(ofDigit: UInt8(ascii: "g")) == nil && Hex.value(ofDigit: UInt8(ascii: "G")) == nil)
        #expect(Hex.decode("0F") == nil, "decode stays strict: lowercase only")
    }
}

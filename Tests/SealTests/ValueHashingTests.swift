import CofferTestSupport
import LockedMemory
import Model
import Seal
import Testing

@Suite struct ValueHashingTests {
    func derive(_ text: String, _ parameters: HashParameters) throws -> LockedBytes {
        try TestKeys.prepareSecureHeap()
        return try Array(text.utf8).withUnsafeBytes { try ValueHashing.derive($0, parameters) }
    }

    func matches(_ text: String, _ stored: LockedBytes, _ parameters: HashParameters) throws -> Bool {
        try Array(text.utf8).withUnsafeBytes { try ValueHashing.matches($0, stored: stored, parameters) }
    }

    @Test func hmacRecordsHoldARandomKeyAndTheMACAndMatchOnlyTheValue() throws {
        let first = try derive("tok_abc", .hmacSHA256)
        let second = try derive("tok_abc", .hmacSHA256)
        #expect(first.count == 64)
        // A fresh key each time: equal values do not give equal records.
        #expect(!second.withUnsafeBytes { first.constantTimeEquals($0) })
        #expect(try matches("tok_abc", first, .hmacSHA256))
        #expect(try matches("tok_abc", second, .hmacSHA256))
        #expect(try !matches("tok_abd", first, .hmacSHA256))
        #expect(try !matches("", first, .hmacSHA256))
    }

    // RFC 7914 section 12, second vector: scrypt("password", "NaCl", N=1024,
    // r=8, p=16, dkLen=64); we keep the first 32 bytes.
    @Test func scryptMatchesTheRFC7914Vector() throws {
        let parameters = HashParameters.scrypt(n: 1024, r: 8, p: 16, salt: Array("NaCl".utf8))
        let out = try derive("password", parameters)
        let hex = out.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
        #expect(hex == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162")
        #expect(try matches("password", out, parameters))
        #expect(try !matches("Password", out, parameters))
    }

    @Test func scryptParametersOutsideTheLimitsAreRefusedNotRun() throws {
        #expect(throws: SealError.self) { try derive("x", .scrypt(n: 1000, r: 8, p: 1, salt: [1])) }
        #expect(throws: SealError.self) { try derive("x", .scrypt(n: 1 << 20, r: 8, p: 1, salt: [1])) }
        #expect(throws: SealError.self) { try derive("x", .scrypt(n: 1024, r: 0, p: 1, salt: [1])) }
    }

    @Test func aRecordOfTheWrongLengthIsMalformed() throws {
        try TestKeys.prepareSecureHeap()
        let short = try LockedBytes(count: 10)
        #expect(throws: SealError.self) { try matches("x", short, .hmacSHA256) }
        #expect(throws: SealError.self) { try matches("x", short, .scryptDefault(salt: [1])) }
    }
}

@Suite struct GeneratedValueTests {
    func text(_ value: GeneratedValue) throws -> String {
        try TestKeys.prepareSecureHeap()
        return try value.make().withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    @Test func tokensArePrefixUnderscoreAndLowercaseHex() throws {
        let token = try text(GeneratedValue(bytes: 32, format: .token, prefix: "pg"))
        #expect(token.hasPrefix("pg_"))
        let hex = token.dropFirst(3)
        #expect(hex.count == 64)
        #expect(hex.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(try text(GeneratedValue(bytes: 32, format: .token, prefix: "pg")) != token)
    }

    @Test func hexAndBase64HaveTheAskedLength() throws {
        #expect(try text(GeneratedValue(bytes: 16, format: .hex)).count == 32)
        let b64 = try text(GeneratedValue(bytes: 32, format: .base64))
        #expect(b64.count == 44)
        #expect(Base64.decode(Array(b64.utf8))?.count == 32)
    }

    @Test func prefixesAreCheckedBeforeUse() {
        #expect(GeneratedValue.isValidPrefix("coffer-ci"))
        #expect(!GeneratedValue.isValidPrefix(""))
        #expect(!GeneratedValue.isValidPrefix("a_b"))
        #expect(!GeneratedValue.isValidPrefix(String(repeating: "a", count: 33)))
    }
}

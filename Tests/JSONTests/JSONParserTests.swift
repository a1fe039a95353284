import Model
import Testing

@testable import JSON

@Suite struct JSONParserTests {
    func parse(_ text: String) throws(CofferError) -> JSONValue {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw in
            Result { () throws(CofferError) in try JSONParser.parse(raw) }
        }.get()
    }

    func decoded(_ text: String) throws -> String {
        let bytes = Array(text.utf8)
        guard case .string(let s) = try parse(text) else { Issue.record("not a string"); return "" }
        return bytes.withUnsafeBytes { JSONStringDecoding.string(s, in: $0) }
    }

    @Test(arguments: [
        "{}", "[]", "null", "true", "false", "0", "-0", "1.5e10", "-12.25E-3", #""""#,
        #"{"a":[1,{"b":null}],"c":"d"}"#, " \t\r\n{ \"a\" : 1 } \n",
    ])
    func acceptsValidJSON(_ text: String) throws {
        _ = try parse(text)
    }

    @Test(arguments: [
        "", "{", "}", "[1,]", #"{"a":1,}"#, #"{"a" 1}"#, "01", "1.", ".5", "-", "1e", "+1", "tru", "nul",
        #""abc"#, #""\x""#, #""\u12""#, "\"\u{01}\"", #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#,
        "{} {}", #"{"a":1,"a":2}"#, "[" + String(repeating: "[", count: 40) + String(repeating: "]", count: 41),
    ])
    func refusesInvalidJSON(_ text: String) {
        let error = #expect(throws: CofferError.self) { try parse(text) }
        #expect(error?.code == .badRequest)
    }

    @Test func refusesInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        let error = #expect(throws: CofferError.self) {
            try bytes.withUnsafeBytes { raw in Result { () throws(CofferError) in try JSONParser.parse(raw) } }.get()
        }
        #expect(error?.message.contains("UTF-8") == true)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try decoded(#""a\"b\\c\/d\n\t\r\b\f""#) == "a\"b\\c/d\n\t\r\u{8}\u{c}")
        #expect(try decoded(#""\u00e9\u20ac\ud83d\ude00""#) == "é€😀")
        #expect(try decoded("\"é€😀\"") == "é€😀")
    }

    @Test func errorMessagesNeverQuoteTheInput() {
        let error = #expect(throws: CofferError.self) { try parse(#"{"value":"TOPSECRET" "#) }
        #expect(error?.message.contains("TOPSECRET") == false)
    }
}

@Suite struct UTF8ValidationTests {
    @Test(arguments: [
        [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0x80], [0xE2, 0x82],
    ] as [[UInt8]])
    func refusesIllFormedSequences(_ bytes: [UInt8]) {
        #expect(!bytes.withUnsafeBytes { UTF8Validation.isValid($0) })
    }

    @Test func acceptsWellFormedText() {
        let bytes = Array("aé€😀\u{10FFFF}".utf8)
        #expect(bytes.withUnsafeBytes { UTF8Validation.isValid($0) })
    }
}

import Testing

@testable import JSON

@Suite struct JSONParserTests {
    func parse(_ text: String) throws(JSONError) -> JSONValue { try parsed(text) }

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
        let error = #expect(throws: JSONError.self) { try parse(text) }
        #expect(error?.message.isEmpty == false)
    }

    @Test func refusesInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        let error = #expect(throws: JSONError.self) {
            try bytes.withUnsafeBytes { raw in Result { () throws(JSONError) in try JSONParser.parse(raw) } }.get()
        }
        #expect(error?.message.contains("UTF-8") == true)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try decoded(#""a\"b\\c\/d\n\t\r\b\f""#) == "a\"b\\c/d\n\t\r\u{8}\u{c}")
        #expect(try decoded(#""\u00e9\u20ac\ud83d\ude00""#) == "é€😀")
        #expect(try decoded("\"é€😀\"") == "é€😀")
    }

    @Test func errorMessagesNeverQuoteTheInput() {
        let error = #expect(throws: JSONError.self) { try parse(#"{"value":"TOPSECRET" "#) }
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

/// JSONCursor reads front to back what JSONParser reads as a tree, by the
/// same rules (JSONScanner).
@Suite struct JSONCursorTests {
    func read<T>(_ text: String, _ body: (inout JSONCursor) throws(JSONError) -> T) throws(JSONError) -> T {
        try Array(text.utf8).withUnsafeBytes { raw in
            Result { () throws(JSONError) in
                var cursor = try JSONCursor(raw)
                let value = try body(&cursor)
                try cursor.end()
                return value
            }
        }.get()
    }

    /// `[n, n, ...]`, as whole numbers.
    func numbers(_ text: String) throws(JSONError) -> [Int] {
        try read(text) { (c) throws(JSONError) in
            var array = try c.beginArray()
            var out: [Int] = []
            while try c.nextElement(&array) { out.append(Int(String(decoding: try c.number(), as: UTF8.self))!) }
            return out
        }
    }

    @Test func readsMembersAndElementsInOrder() throws {
        let text = #" { "a" : [1, {"b":"x\/y"}], "c":true,"d" :[] } "#
        let bytes = Array(text.utf8)
        var seen: [String] = []
        _ = try read(text) { (c) throws(JSONError) in
            var top = try c.beginObject()
            while let name = try c.nextMember(&top) {
                seen.append(JSONStringDecoding.string(name, in: c.bytes))
                if c.name(name, is: "a") {
                    var array = try c.beginArray()
                    #expect(try c.nextElement(&array))
                    #expect(String(decoding: try c.number(), as: UTF8.self) == "1")
                    #expect(try c.nextElement(&array))
                    var inner = try c.beginObject()
                    let b = try c.nextMember(&inner)!
                    #expect(c.name(b, is: "b"))
                    seen.append(JSONStringDecoding.string(try c.string(), in: c.bytes))
                    #expect(try c.nextMember(&inner) == nil)
                    #expect(try !c.nextElement(&array))
                } else if c.name(name, is: "c") {
                    #expect(try c.bool())
                } else {
                    var empty = try c.beginArray()
                    #expect(try !c.nextElement(&empty))
                }
            }
        }
        #expect(seen == ["a", "x/y", "c", "d"])
        #expect(bytes.count > 0)
        #expect(try numbers("[]") == [])
        #expect(try numbers("[1,-2 , 30]") == [1, -2, 30])
    }

    @Test(arguments: [
        "", "[", "[1,]", "[,1]", "[1 2]", "[1] 2", "{}", "[true]", #"["1"]"#, "[01]",
        "[" + String(repeating: "[", count: 40) + String(repeating: "]", count: 41),
    ])
    func refusesWhatIsNotAnArrayOfNumbers(_ text: String) {
        let error = #expect(throws: JSONError.self) { try numbers(text) }
        #expect(error?.message.isEmpty == false)
    }

    func nested(_ c: inout JSONCursor) throws(JSONError) {
        var array = try c.beginArray()
        while try c.nextElement(&array) { try nested(&c) }
    }

    @Test func refusesDeepNesting() throws {
        func text(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        try read(text(10)) { (c) throws(JSONError) in try nested(&c) }
        let error = #expect(throws: JSONError.self) { try read(text(40)) { (c) throws(JSONError) in try nested(&c) } }
        #expect(error?.message.contains("nested deeper") == true)
    }

    @Test func refusesInvalidUTF8AndDoesNotQuoteTheInput() {
        let error = #expect(throws: JSONError.self) {
            try [0x5B, 0xC3, 0x28, 0x5D].withUnsafeBytes { raw in Result { () throws(JSONError) in try JSONCursor(raw) } }.get()
        }
        #expect(error?.message.contains("UTF-8") == true)
        let quoted = #expect(throws: JSONError.self) { try numbers(#"["secret-value"]"#) }
        #expect(quoted?.message.contains("secret-value") == false)
    }
}

/// The scanner and the validator take eight bytes at a time where they can:
/// a byte that matters is found wherever it falls in a word.
@Suite struct WordAtATimeTests {
    @Test(arguments: ["\"", "\\n", "\u{01}", "\u{1F}", "é"])
    func aSpecialByteIsFoundAtEveryOffset(_ special: String) throws {
        for length in 0..<40 {
            for position in 0...length {
                let body = String(repeating: "a", count: position) + special + String(repeating: "b", count: length - position)
                let text = "\"" + body + "\""
                let bytes = Array(text.utf8)
                let result = bytes.withUnsafeBytes { raw in Result { () throws(JSONError) in try JSONParser.parse(raw) } }
                switch special {
                case "\"":
                    // The string ends early: what follows is not JSON.
                    #expect(throws: JSONError.self, "\(length) \(position)") { try result.get() }
                case "\u{01}", "\u{1F}":
                    #expect(throws: JSONError.self, "\(length) \(position)") { try result.get() }
                default:
                    let value = try result.get()
                    guard case .string(let s) = value else { Issue.record("not a string"); continue }
                    let decoded = bytes.withUnsafeBytes { JSONStringDecoding.string(s, in: $0) }
                    let expected = String(repeating: "a", count: position) + (special == "\\n" ? "\n" : special)
                        + String(repeating: "b", count: length - position)
                    #expect(decoded == expected, "\(length) \(position)")
                }
            }
        }
    }

    @Test func anInvalidByteIsFoundAtEveryOffset() {
        for length in 1..<40 {
            for position in 0..<length {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                #expect(bytes.withUnsafeBytes { UTF8Validation.isValid($0) })
                bytes[position] = 0xFF
                #expect(!bytes.withUnsafeBytes { UTF8Validation.isValid($0) }, "\(length) \(position)")
                bytes[position] = 0xC3
                if position + 1 < length { bytes[position + 1] = 0xA9 }
                #expect(bytes.withUnsafeBytes { UTF8Validation.isValid($0) } == (position + 1 < length), "\(length) \(position)")
            }
        }
    }
}

extension WordAtATimeTests {
    /// Runs of spaces of every length, before and between values, read the
    /// same as none.
    @Test func indentationOfAnyLengthIsSkipped() throws {
        for width in 0..<30 {
            let pad = String(repeating: " ", count: width)
            let text = pad + "{" + pad + "\n" + pad + "\"a\"" + pad + ":" + pad + "[1," + pad + "2]" + pad + "\n}" + pad
            let value = try Array(text.utf8).withUnsafeBytes { raw in Result { () throws(JSONError) in try JSONParser.parse(raw) } }.get()
            guard case .object(let members) = value else { Issue.record("not an object at \(width)"); continue }
            #expect(Array(members.keys) == ["a"], "\(width)")
        }
    }
}

/// One escaping rule for every JSON string cofferd writes.
@Suite struct JSONEscapingTests {
    func quoted(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        bytes.withUnsafeBytes { JSONEscaping.quote($0) { out.append($0) } }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func controlCharactersQuotesAndDELAreEscapedAndTheRestPassesThrough() throws {
        #expect(quoted(Array("a\"b\\c\n\r\t".utf8)) == #""a\"b\\c\n\r\t""#)
        #expect(quoted([0x01, 0x1F, 0x7F]) == #""\u0001\u001f\u007f""#)
        #expect(quoted(Array("é/✓".utf8)) == "\"é/✓\"")
        // What it writes, the strict parser reads back as it was.
        let all = String(decoding: (0...0x7F).map(UInt8.init), as: UTF8.self)
        #expect(try JSONParserTests().decoded(quoted(Array(all.utf8))) == all)
    }
}

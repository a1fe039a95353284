import Testing

@testable import JSON

@Suite struct JSONObjectTests {
    func parse(_ text: String) throws(JSONError) -> JSONValue { try parsed(text) }

    @Test func membersKeepTheOrderSentAndAreFoundByName() throws {
        guard case .object(let object) = try parse(#"{"op":"get","name":"db/password","id":7}"#) else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["op", "name", "id"])
        #expect(object["id"] == .number("7"))
        #expect(object["missing"] == nil)
    }

    /// Below and past the size where names are indexed: a duplicate is
    /// refused either way, wherever it stands.
    @Test(arguments: [2, JSONObject.indexedFrom - 1, JSONObject.indexedFrom, 500])
    func aDuplicateNameIsRefusedAtAnySize(_ count: Int) throws {
        let members = (0..<count).map { "\"m\($0)\":\($0)" }
        #expect(throws: Never.self) { _ = try parse("{" + members.joined(separator: ",") + "}") }
        for repeated in [0, count - 1] {
            let text = "{" + (members + ["\"m\(repeated)\":true"]).joined(separator: ",") + "}"
            #expect(throws: JSONError.self, "m\(repeated) twice among \(count)") { _ = try parse(text) }
        }
    }

    @Test func objectsCompareByMembersNotOrder() throws {
        #expect(try parse(#"{"a":1,"b":[true]}"#) == parse(#"{"b":[true],"a":1}"#))
        #expect(try parse(#"{"a":1}"#) != parse(#"{"a":2}"#))
        #expect(try parse(#"{"a":1}"#) != parse(#"{"a":1,"b":2}"#))
    }
}

import Audit
import CofferCore
import Foundation
import Model
import Testing

@testable import Server

/// Every operation against an audit sink that refuses every event: nothing
/// that reveals a value, a token, a verdict or the store gets out, and the
/// answer says UNAVAILABLE (docs/security.md, "Every reveal is on record").
@Suite struct FailClosedTests {
    static let value = "SEALED-VALUE-4f1c", hashed = "HASHED-VALUE-9a2e"

    /// One request per operation (valid, so that the handler runs), and
    /// whether its answer reveals something.
    static let requests: [Model.Operation: (String, reveals: Bool)] = [
        .ping: (#"{"op":"ping"}"#, false),
        .get: (#"{"op":"get","name":"app/sealed"}"#, true),
        .verify: (#"{"op":"verify","name":"app/hashed","value":"HASHED-VALUE-9a2e"}"#, true),
        .list: (#"{"op":"list"}"#, false),
        .describe: (#"{"op":"describe","name":"app/sealed"}"#, false),
        .watch: (#"{"op":"watch","names":["app/**"]}"#, false),
        .put: (#"{"op":"put","name":"app/generated","generate":{"bytes":16},"protection":"hashed"}"#, true),
        .rotate: (#"{"op":"rotate","name":"app/hashed","generate":{"bytes":16}}"#, true),
        .promote: (#"{"op":"promote","name":"app/sealed"}"#, false),
        .rollback: (#"{"op":"rollback","name":"app/sealed"}"#, false),
        .delete: (#"{"op":"delete","name":"app/other"}"#, false),
        .history: (#"{"op":"history","name":"app/sealed"}"#, false),
        .tokenCreate: (#"{"op":"token.create","name":"app/token"}"#, true),
        .rotateMasterKey: (#"{"op":"rotate-master-key"}"#, false),
        .seal: (#"{"op":"seal"}"#, false),
        .unseal: (#"{"op":"unseal"}"#, false),
        .reload: (#"{"op":"reload"}"#, false),
        .status: (#"{"op":"status"}"#, false),
        .audit: (#"{"op":"audit","limit":1}"#, false),
        .import: (#"{"op":"import","secrets":[{"name":"app/imported","value":"IMPORTED-VALUE"}]}"#, false),
        .export: (#"{"op":"export","plaintext":true}"#, true),
        .restore: (#"{"op":"restore","from":"postgres"}"#, false),
    ]

    @Test func everyOperationHasARequestHere() {
        #expect(Set(Self.requests.keys) == Set(Model.Operation.allCases))
    }

    /// The dispatcher's switch gives each operation the handler made for it.
    @Test(arguments: Model.Operation.allCases)
    func everyOperationHasItsOwnHandler(operation: Model.Operation) throws {
        let core = try Harness().services
        #expect(RequestDispatcher.handler(for: operation, core: core).operation == operation)
    }

    @Test(arguments: Model.Operation.allCases)
    func nothingIsRevealedWithoutItsEvent(operation: Model.Operation) async throws {
        let h = try Harness()
        for setup in [
            #"{"op":"put","name":"app/sealed","value":"SEALED-VALUE-4f1c"}"#,
            #"{"op":"rotate","name":"app/sealed","value":"SEALED-VALUE-4f1c","pending":true}"#,
            #"{"op":"put","name":"app/hashed","value":"HASHED-VALUE-9a2e","protection":"hashed","hash":"hmac-sha256"}"#,
            #"{"op":"put","name":"app/other","value":"x"}"#,
        ] {
            #expect(try await h.call(setup)["ok"] as? Bool == true)
        }
        h.audit.failing.withLock { $0 = true }
        let (request, reveals) = try #require(Self.requests[operation])
        let answer = await h.line(request)
        #expect(!answer.contains(Self.value) && !answer.contains(Self.hashed), "\(operation.rawValue): \(answer)")
        if reveals {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])
            #expect((object["error"] as? [String: Any])?["code"] as? String == "UNAVAILABLE", "\(operation.rawValue): \(answer)")
            #expect(Set(object.keys) == ["id", "ok", "error"], "no member of the answer gets out")
        }

        // The same request with the journal back reveals what it should:
        // the table above says which do.
        h.audit.failing.withLock { $0 = false }
        if operation != .put, operation != .tokenCreate, operation != .import, operation != .delete, operation != .seal {
            let again = try await h.call(Self.requests[operation]!.0)
            if reveals { #expect(again["ok"] as? Bool == true, "\(operation.rawValue): \(again)") }
        }
    }

    @Test func aReceiptIsWhatLetsAValueOut() throws {
        let response = Response.success(.null, [("value", .verdict(true))])
        #expect(String(decoding: response.encoded().bytes, as: UTF8.self).contains("UNAVAILABLE"))
    }
}

/// scrypt work is bounded: past the permits a password check is refused at
/// once, and gets are answered meanwhile (docs/security.md, "Resources").
@Suite struct ScryptPermitTests {
    @Test func aFullHouseRefusesPasswordChecksAtOnceAndStillAnswersGets() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"pw","value":"pa55","protection":"hashed"}"#)
        _ = try await h.call(#"{"op":"put","name":"k","value":"v"}"#)
        var taken = 0
        while h.services.scrypt.take() { taken += 1 }
        #expect(try await h.errorCode(#"{"op":"verify","name":"pw","value":"pa55"}"#) == "UNAVAILABLE")
        #expect(try await h.errorCode(#"{"op":"put","name":"pw2","value":"x","protection":"hashed"}"#) == "UNAVAILABLE")
        #expect(try await h.call(#"{"op":"get","name":"k"}"#, on: .service)["value"] as? String == "v")
        for _ in 0..<taken { h.services.scrypt.release() }
        #expect(try await h.call(#"{"op":"verify","name":"pw","value":"pa55"}"#)["match"] as? Bool == true)
    }

    @Test func aCandidateLongerThanAnyValueIsRefusedBeforeHashing() async throws {
        let h = try Harness()
        _ = try await h.call(#"{"op":"put","name":"pw","value":"pa55","protection":"hashed"}"#)
        let long = String(repeating: "a", count: 48 * 1024 + 1)
        #expect(try await h.errorCode(#"{"op":"verify","name":"pw","value":"\#(long)"}"#) == "BAD_REQUEST")
    }
}
